"""The wire contract: one definition, a committed schema, and nothing but numbers and labels."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from contract import Heartbeat, IntervalReport, ReportBatch, interval_report_id
from contract.report import REPORT_ID_NAMESPACE
from contract.schema import HEARTBEAT, REPORT_BATCH, SCHEMAS, CommittedSchema

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def report(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "schema_version": 1,
        "report_id": interval_report_id("cam-1", START),
        "camera_id": "cam-1",
        "interval_start": "2026-03-02T08:00:00Z",
        "interval_seconds": 60,
        "partial": False,
        "coverage": 1.0,
        "frames_processed": 1500,
        "fps": 25.0,
        "counts": [{"line": "main", "direction": "down", "vehicle_class": "car", "count": 12}],
        "zones": [],
        "health": {"reconnects": 0, "dropped_reports": 0},
    }
    body.update(changes)
    return body


def heartbeat(**changes: Any) -> dict[str, Any]:
    """A heartbeat as a worker from before the dead-letter count sends it."""
    body: dict[str, Any] = {
        "schema_version": 1,
        "camera_id": "cam-1",
        "sent_at": "2026-03-02T08:00:00Z",
        "uptime_s": 60.0,
        "outbox_backlog": 0,
        "dropped_reports": 0,
        "streams": [{"camera_id": "cam-1", "state": "streaming", "reconnects": 0, "fps": 10.0}],
        "config_version": 1,
    }
    body.update(changes)
    return body


@pytest.mark.parametrize("committed", SCHEMAS, ids=lambda c: c.path.name)
def test_committed_schema_matches_the_models(committed: CommittedSchema) -> None:
    assert committed.path.read_text(encoding="utf-8") == committed.render(), (
        "run python -m contract.schema"
    )


def test_schema_and_models_agree_on_a_valid_report() -> None:
    batch = {"reports": [report()]}
    jsonschema.validate(batch, REPORT_BATCH.committed())
    assert ReportBatch.model_validate(batch).reports[0].counts[0].count == 12


@pytest.mark.parametrize(("changes", "dead_lettered"), [({}, 0), ({"dead_lettered_reports": 3}, 3)])
def test_heartbeats_with_and_without_the_dead_letter_count_are_valid(
    changes: dict[str, Any], dead_lettered: int
) -> None:
    body = heartbeat(**changes)
    jsonschema.validate(body, HEARTBEAT.committed())
    assert Heartbeat.model_validate(body).dead_lettered_reports == dead_lettered


@pytest.mark.parametrize("count", [-1, 100_001, "3", 2.5, None])
def test_the_dead_letter_count_is_a_bounded_integer(count: object) -> None:
    body = heartbeat(dead_lettered_reports=count)
    with pytest.raises(ValidationError):
        Heartbeat.model_validate(body)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(body, HEARTBEAT.committed())


@pytest.mark.parametrize(
    "changes",
    [
        {"image": "/9j/4AAQSkZJRg=="},  # no field can carry anything else
        {"tracks": [{"id": 1, "x": 10, "y": 20}]},
        {
            "counts": [
                {
                    "line": "main",
                    "direction": "down",
                    "vehicle_class": "car",
                    "count": 1,
                    "track_id": 7,
                }
            ]
        },
        {"counts": [{"line": "../etc", "direction": "down", "vehicle_class": "car", "count": 1}]},
        {"counts": [{"line": "<script>", "direction": "down", "vehicle_class": "car", "count": 1}]},
        {"counts": [{"line": "main", "direction": "down", "vehicle_class": "person", "count": 1}]},
        {"counts": [{"line": "main", "direction": "down", "vehicle_class": "car", "count": -1}]},
        {"counts": [{"line": "main", "direction": "down", "vehicle_class": "car", "count": "1"}]},
        {
            "counts": [
                {"line": "main", "direction": "down", "vehicle_class": "car", "count": 10**12}
            ]
        },
        {"coverage": 1.5},
        {"interval_start": "2026-03-02T08:00:30Z"},  # not aligned
        {"interval_start": "2026-03-02T08:00:00"},  # no timezone
        {"interval_seconds": 61},
        {"report_id": "00000000-0000-0000-0000-000000000000"},  # ids are derived, not chosen
        {"schema_version": 3},
        {"schema_version": 1, "config_version": 3},  # a v2 field in a v1 report
    ],
)
def test_anything_but_aggregates_is_rejected(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        IntervalReport.model_validate(report(**changes))


def test_duplicate_rows_are_rejected() -> None:
    row = {"line": "main", "direction": "down", "vehicle_class": "car", "count": 1}
    with pytest.raises(ValidationError, match="more than one row"):
        IntervalReport.model_validate(report(counts=[row, row]))


@given(
    camera=st.from_regex(r"\A[a-z0-9][a-z0-9_-]{0,31}\Z"),
    minutes=st.integers(min_value=0, max_value=10**6),
)
def test_report_ids_are_deterministic_and_distinct(camera: str, minutes: int) -> None:
    start = START + timedelta(minutes=minutes)
    assert interval_report_id(camera, start) == interval_report_id(camera, start)
    assert interval_report_id(camera, start) != interval_report_id(
        camera, start + timedelta(minutes=1)
    )


@pytest.mark.parametrize(
    ("camera", "start", "report_id"),
    [
        ("cam-1", datetime(2026, 3, 2, 8, 0, tzinfo=UTC), "549a3bcc-3c74-5f62-a50f-56868988fc47"),
        ("load-00042", datetime(1, 1, 1, tzinfo=UTC), "31722c3f-a42c-5420-8150-948fccf5b8e7"),
        (
            "a",
            datetime(999, 12, 31, 23, 59, 50, tzinfo=UTC),
            "04fce43e-5228-50a1-b6b6-5709351aea40",
        ),
        (
            "cam-2",
            datetime(2026, 3, 2, 9, 15, tzinfo=timezone(timedelta(hours=1))),
            "827dbeba-b783-5c7d-ae64-41941dad44ca",
        ),
    ],
)
def test_report_ids_never_change(camera: str, start: datetime, report_id: str) -> None:
    """Workers' outboxes and stored reports hold these ids: a new formula would turn every
    resend after an upgrade into a new report (ids as the first release derived them)."""
    assert interval_report_id(camera, start) == report_id


@given(
    camera=st.from_regex(r"\A[a-z0-9][a-z0-9_-]{0,31}\Z"),
    start=st.datetimes(timezones=st.just(UTC)),
)
def test_report_ids_are_the_uuid5_of_camera_and_start(camera: str, start: datetime) -> None:
    stamp = start.strftime("%Y-%m-%dT%H:%M:%SZ")
    expected = uuid.uuid5(REPORT_ID_NAMESPACE, f"{camera}/{stamp}")
    assert interval_report_id(camera, start) == str(expected)


STREAM = {"camera_id": "cam-1", "state": "streaming", "reconnects": 0, "fps": 10.0}


@pytest.mark.parametrize(
    "changes",
    [
        {"sent_at": "0001-01-01T00:00:00+14:00"},  # cannot even be converted to UTC
        {"sent_at": "9999-12-31T23:59:59Z"},
        {"sent_at": "1969-12-31T23:59:59Z"},
        {"sent_at": "2026-03-02T08:00:00"},  # no timezone
        {"streams": [STREAM | {"frame_width": 640}]},  # a width without a height
        {"streams": [STREAM | {"frame_height": 480, "source_fps": 25}]},
    ],
    ids=["year 1", "year 9999", "before 1970", "naive", "width only", "height only"],
)
def test_heartbeats_that_describe_no_clock_or_no_video_are_refused(
    changes: dict[str, Any],
) -> None:
    with pytest.raises(ValidationError):
        Heartbeat.model_validate(heartbeat(**changes))


def test_a_heartbeat_from_a_device_without_a_real_time_clock_is_valid() -> None:
    body = heartbeat(
        sent_at="1970-01-01T00:05:00Z",
        streams=[STREAM | {"frame_width": 640, "frame_height": 480, "source_fps": 25}],
    )
    assert Heartbeat.model_validate(body).sent_at.year == 1970
