"""The committed JSON Schemas of the wire contract: ``python -m contract.schema`` rewrites them.

A test fails when the models and a committed file disagree, so a contract change is always a
visible, reviewed change of ``interval_report.schema.json`` or ``heartbeat.schema.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from contract.report import Heartbeat, ReportBatch

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
    "https://tally.example/schemas/interval-report-batch/v1",
)
"""``POST /api/v1/reports``."""
HEARTBEAT = CommittedSchema(
    HERE / "heartbeat.schema.json", Heartbeat, "https://tally.example/schemas/heartbeat/v1"
)
"""``POST /api/v1/heartbeat``."""
SCHEMAS = (REPORT_BATCH, HEARTBEAT)


if __name__ == "__main__":
    for committed in SCHEMAS:
        committed.path.write_text(committed.render(), encoding="utf-8")
        print(f"wrote {committed.path}")
