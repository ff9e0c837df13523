"""The sign for the pole: a printable A5 SVG with a QR code that links to the camera's page.

The QR code comes from segno (a maintained QR library), its SVG nested in ours; the fixed
sentences are shipped in English and Dutch (``register_language`` picks one), the operator's
name and contact come from the settings. Every text is XML-escaped: none of it is markup.
"""

from __future__ import annotations

import io
import textwrap
from dataclasses import dataclass
from typing import Literal
from xml.sax.saxutils import escape, quoteattr

import segno

Language = Literal["en", "nl"]
WIDTH_MM, HEIGHT_MM = 148, 210
"""A5 portrait."""
MARGIN_MM = 12
QR_MM = 70
BODY_PT = 4.6
"""Body text size in millimetres of the viewBox (about 13 pt on paper)."""
CHARS_PER_LINE = 44
"""How many characters of body text fit one line at that size (sans-serif, A5 width)."""


@dataclass(frozen=True, slots=True)
class SignWords:
    """The fixed sentences of a sign in one language."""

    headline: str
    counts: str
    no_images: str
    scan: str
    contact: str
    operator: str
    camera: str


WORDS: dict[Language, SignWords] = {
    "en": SignWords(
        headline="This camera counts traffic",
        counts="It counts vehicles by type and direction and measures congestion. Nothing else.",
        no_images=(
            "It keeps no images and sends no images: every frame is deleted in the camera"
            " as soon as it has been counted."
        ),
        scan="What it sends, byte for byte, is public: scan the code or visit",
        contact="Questions or objections:",
        operator="Operated by",
        camera="Camera",
    ),
    "nl": SignWords(
        headline="Deze camera telt verkeer",
        counts="Hij telt voertuigen per soort en rijrichting en meet de drukte. Verder niets.",
        no_images=(
            "Hij bewaart en verstuurt geen beelden: elk beeld wordt in de camera gewist"
            " zodra het geteld is."
        ),
        scan="Wat hij verstuurt, tot op de byte, is openbaar: scan de code of ga naar",
        contact="Vragen of bezwaar:",
        operator="Beheerder:",
        camera="Camera",
    ),
}


@dataclass(frozen=True, slots=True)
class SignFacts:
    """What one camera's sign says about it."""

    camera_id: str
    place: str
    operator: str
    contact: str
    page_url: str


def qr_svg(url: str, x: float, y: float, size: float) -> str:
    """segno's SVG of the QR code for `url`, placed as a nested square of `size` mm."""
    code = segno.make(url, error="m")
    buffer = io.BytesIO()
    code.save(buffer, kind="svg", xmldecl=False, svgns=False, omitsize=True, border=4, nl=False)
    inner = buffer.getvalue().decode()
    return inner.replace("<svg ", f'<svg x="{x}" y="{y}" width="{size}" height="{size}" ', 1)


def text_block(lines: list[str], y: float, size: float, weight: str = "normal") -> str:
    """Left-aligned lines of text from baseline `y`, each escaped."""
    spans = "".join(
        f'<tspan x="{MARGIN_MM}" dy="{0 if i == 0 else size * 1.3:.2f}">{escape(line)}</tspan>'
        for i, line in enumerate(lines)
    )
    return f'<text y="{y:.2f}" font-size="{size}" font-weight="{weight}">{spans}</text>'


def wrapped(text: str, chars: int = CHARS_PER_LINE) -> list[str]:
    return textwrap.wrap(text, chars, break_long_words=True) or [""]


def sign_svg(facts: SignFacts, language: Language) -> str:
    """The whole sign as an SVG document (A5, millimetre units)."""
    words = WORDS[language]
    parts: list[str] = []
    y = MARGIN_MM + 10.0

    def block(
        text: str, size: float = BODY_PT, weight: str = "normal", gap: float = 3.0, link: str = ""
    ) -> None:
        nonlocal y
        lines = wrapped(text, round(CHARS_PER_LINE * BODY_PT / size))
        element = text_block(lines, y, size, weight)
        parts.append(f"<a href={quoteattr(link)}>{element}</a>" if link else element)
        y += size * 1.3 * len(lines) + gap

    block(words.headline, size=9.0, weight="bold", gap=4.0)
    block(words.counts)
    block(words.no_images, weight="bold", gap=4.0)
    parts.append(qr_svg(facts.page_url, (WIDTH_MM - QR_MM) / 2, y - 2, QR_MM))
    y += QR_MM + 4
    block(words.scan, size=3.6, gap=0.5)
    block(facts.page_url, size=3.6, weight="bold", link=facts.page_url)
    block(f"{words.contact} {facts.contact}")
    block(f"{words.operator} {facts.operator}", size=3.6, gap=1.0)
    block(f"{words.camera} {facts.camera_id} · {facts.place}", size=3.6)
    title = f"{words.headline}: {words.camera} {facts.camera_id}"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH_MM}mm" height="{HEIGHT_MM}mm"'
        f' viewBox="0 0 {WIDTH_MM} {HEIGHT_MM}" lang={quoteattr(language)}'
        ' font-family="DejaVu Sans, Arial, Helvetica, sans-serif" fill="#000">'
        f"<title>{escape(title)}</title>"
        f'<rect width="{WIDTH_MM}" height="{HEIGHT_MM}" fill="#fff"/>'
        f'<rect x="4" y="4" width="{WIDTH_MM - 8}" height="{HEIGHT_MM - 8}" fill="none"'
        ' stroke="#0550ae" stroke-width="1.5" rx="4"/>'
        f"{''.join(parts)}</svg>\n"
    )
