"""Complete, valid interval reports for documentation examples, tests and benchmarks.

Built through the contract itself, so an example can never drift from what the API accepts.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from contract.report import CountRow, Health, IntervalReport, interval_report_id


def full_interval_report(
    camera_id: str,
    start: datetime,
    counts: Iterable[CountRow],
    *,
    interval_seconds: int = 60,
    fps: float = 15.0,
) -> IntervalReport:
    """A fully covered interval (``coverage`` 1, no zones, a healthy stream)."""
    return IntervalReport(
        report_id=interval_report_id(camera_id, start),
        camera_id=camera_id,
        interval_start=start,
        interval_seconds=interval_seconds,
        partial=False,
        coverage=1.0,
        frames_processed=round(fps * interval_seconds),
        fps=fps,
        counts=list(counts),
        zones=[],
        health=Health(reconnects=0, dropped_reports=0),
    )
