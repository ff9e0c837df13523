"""Debian's Chromium, driven headless by Playwright (never a downloaded browser)."""

from __future__ import annotations

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # without these, Chromium's background connections are refused by the closed network
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
