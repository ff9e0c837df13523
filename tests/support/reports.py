"""Valid contract reports for tests, built through the contract itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from contract import CountRow, Health, IntervalReport, interval_report_id

BASE_START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def make_report(
    minute: int = 0, *, camera_id: str = "cam-1", cars: int = 3, base: datetime = BASE_START
) -> IntervalReport:
    """The 60-second report ``minute`` minutes after ``base`` (ids follow from the contract)."""
    start = base + timedelta(minutes=minute)
    return IntervalReport(
        report_id=interval_report_id(camera_id, start),
        camera_id=camera_id,
        interval_start=start,
        interval_seconds=60,
        partial=False,
        coverage=1.0,
        frames_processed=900,
        fps=15.0,
        counts=[CountRow(line="north", direction="southbound", vehicle_class="car", count=cars)],
        zones=[],
        health=Health(reconnects=0, dropped_reports=0),
    )
