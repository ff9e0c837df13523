"""The committed JSON Schemas of the wire contract: ``python -m contract.schema`` rewrites them.

A test fails when the models and a committed file disagree, so a contract change is always a
visible, reviewed change of a committed ``*.schema.json``. Each schema accepts version 1 and
version 2 messages (``schema_version``); the fields added in version 2 say so in their titles.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from contract.camera import CameraSetup
from contract.report import Heartbeat, ReportBatch
from contract.scene import SceneMap

HERE = Path(__file__).parent


@dataclass(frozen=True, slots=True)
class CommittedSchema:
    """One message's schema: what a worker posts to one endpoint."""

    path: Path
    model: type[BaseModel]
    schema_id: str

    def schema(self) -> dict[str, Any]:
        """The JSON Schema as the models define it."""
        schema = self.model.model_json_schema()
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = self.schema_id
        return schema

    def render(self) -> str:
        return json.dumps(self.schema(), indent=2, sort_keys=True) + "\n"

    def committed(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
        return loaded


REPORT_BATCH = CommittedSchema(
    HERE / "interval_report.schema.json",
    ReportBatch,
    "https://tally.example/schemas/interval-report-batch/v2",
)
"""``POST /api/v1/reports``."""
HEARTBEAT = CommittedSchema(
    HERE / "heartbeat.schema.json", Heartbeat, "https://tally.example/schemas/heartbeat/v2"
)
"""``POST /api/v1/heartbeat``."""
SCENE_MAP = CommittedSchema(
    HERE / "scene_map.schema.json", SceneMap, "https://tally.example/schemas/scene-map/v2"
)
"""``POST /api/v1/device/scene-map``."""
CAMERA_SETUP = CommittedSchema(
    HERE / "camera_setup.schema.json",
    CameraSetup,
    "https://tally.example/schemas/camera-setup/v2",
)
"""``GET /api/v1/device/config`` and the body of a configuration the API stores."""
SCHEMAS = (REPORT_BATCH, HEARTBEAT, SCENE_MAP, CAMERA_SETUP)


if __name__ == "__main__":
    for committed in SCHEMAS:
        committed.path.write_text(committed.render(), encoding="utf-8")
        print(f"wrote {committed.path}")
