"""The heartbeat's `software` and stream-size fields: optional, bounded, digests only."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from contract import Heartbeat
from contract.schema import HEARTBEAT

DIGEST = "ab" * 32


def heartbeat(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "camera_id": "cam-1",
        "sent_at": "2026-03-02T08:00:00Z",
        "uptime_s": 60.0,
        "outbox_backlog": 0,
        "dropped_reports": 0,
        "streams": [{"camera_id": "cam-1", "state": "streaming", "reconnects": 0, "fps": 10.0}],
        "config_version": 1,
    }
    return body | changes


def stream(**fields: Any) -> list[dict[str, Any]]:
    return [heartbeat()["streams"][0] | fields]


VALID = [
    {},  # a worker from before these fields
    {"software": None},
    {"software": {"version": "0.1.0", "code_sha256": DIGEST, "model_sha256": DIGEST}},
    {"software": {"version": "1.2.3+local", "code_sha256": DIGEST, "model_sha256": None}},
    {"streams": stream(frame_width=320, frame_height=240, source_fps=25.0)},
]
INVALID = [
    {"software": {"version": "0.1.0", "code_sha256": DIGEST.upper(), "model_sha256": None}},
    {"software": {"version": "0.1.0", "code_sha256": DIGEST[:-1], "model_sha256": None}},
    {"software": {"version": "<script>", "code_sha256": DIGEST, "model_sha256": None}},
    {"software": {"version": "0.1.0", "code_sha256": DIGEST, "model_sha256": None, "x": 1}},
    {"software": {"version": "0.1.0", "code_sha256": DIGEST}},  # model digest or null, said
    {"streams": stream(frame_width=0)},
    {"streams": stream(frame_height=100_000)},
    {"streams": stream(source_fps=0)},
]


@pytest.mark.parametrize("changes", VALID)
def test_valid_heartbeats_pass_the_models_and_the_committed_schema(changes: dict[str, Any]) -> None:
    body = heartbeat(**changes)
    Heartbeat.model_validate(body)
    jsonschema.validate(body, HEARTBEAT.committed())


@pytest.mark.parametrize("changes", INVALID)
def test_anything_else_is_refused_by_both(changes: dict[str, Any]) -> None:
    body = heartbeat(**changes)
    with pytest.raises(ValidationError):
        Heartbeat.model_validate(body)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(body, HEARTBEAT.committed())
