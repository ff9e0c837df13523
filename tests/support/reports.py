"""Valid contract reports for tests, built through the contract itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from contract import CountRow, IntervalReport
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
