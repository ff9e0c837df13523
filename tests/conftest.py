"""Suite-wide settings: Ultralytics stays offline and its settings stay in a temp dir."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_CONFIG_DIR", tempfile.mkdtemp(prefix="tally-yolo-config-"))

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TALLY_SHARED") or REPO_ROOT.parent / "shared")
MODEL = SHARED / "models" / "yolo26n_dq.pt"
VIDEO = SHARED / "data" / "video"
