"""The committed JSON Schema of the wire contract: ``python -m contract.schema`` rewrites it.

A test fails when the models and the committed file disagree, so a contract change is
always a visible, reviewed change of ``interval_report.schema.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from contract.report import ReportBatch

SCHEMA_PATH = Path(__file__).with_name("interval_report.schema.json")


def report_batch_schema() -> dict[str, Any]:
    """JSON Schema of a ``POST /api/v1/reports`` body, as the models define it."""
    schema = ReportBatch.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://tally.example/schemas/interval-report-batch/v1"
    return schema


def render() -> str:
    return json.dumps(report_batch_schema(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    SCHEMA_PATH.write_text(render(), encoding="utf-8")
    print(f"wrote {SCHEMA_PATH}")
