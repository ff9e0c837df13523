"""Valid contract reports for tests, built through the contract itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from contract import ConfigPull, CountRow, Heartbeat, IntervalReport, StreamHealth
from contract.examples import full_interval_report

BASE_START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def make_report(
    minute: int = 0, *, camera_id: str = "cam-1", cars: int = 3, base: datetime = BASE_START
) -> IntervalReport:
    """The 60-second report ``minute`` minutes after ``base`` (ids follow from the contract)."""
    return full_interval_report(
        camera_id,
        base + timedelta(minutes=minute),
        [CountRow(line="north", direction="southbound", vehicle_class="car", count=cars)],
    )


def streaming_heartbeat(
    camera_id: str,
    config_version: int,
    *,
    uptime_s: float = 1.0,
    config_pull: ConfigPull | None = None,
    reconnects: int = 0,
) -> Heartbeat:
    """A worker's heartbeat for one camera whose stream is up."""
    return Heartbeat(
        camera_id=camera_id,
        sent_at=datetime.now(UTC),
        uptime_s=uptime_s,
        outbox_backlog=0,
        dropped_reports=0,
        streams=[
            StreamHealth(camera_id=camera_id, state="streaming", reconnects=reconnects, fps=10)
        ],
        config_version=config_version,
        config_pull=config_pull,
    )
