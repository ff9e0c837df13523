"""The live check: a camera's last minutes of counts, per interval, straight from its reports.

An installer watches the road and these numbers side by side, so each interval is shown as
stored (its coverage and the configuration it was counted with); an interval without a
report is left out, never shown as zero traffic.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.commissioning_schemas import LineCount, LiveInterval, LiveOut
from api.models import Camera, CountRecord, IntervalReportRecord
from contract import INTERVAL_CHOICES_S

LONGEST_INTERVAL_S = max(INTERVAL_CHOICES_S)

LineKey = tuple[str, str]


def live_counts(session: Session, camera: Camera, minutes: int, now: datetime) -> LiveOut:
    """Reports of intervals that started before `now` and overlap its last `minutes`, newest
    first."""
    since = int((now - timedelta(minutes=minutes)).timestamp())
    report = IntervalReportRecord
    reports = session.execute(
        select(report.interval_start_s, report.coverage, report.config_version)
        .where(
            report.camera_id == camera.id,
            report.interval_start_s + report.interval_seconds > since,
            # implied by the line above; a plain bound on the column lets the index serve it
            report.interval_start_s > since - LONGEST_INTERVAL_S,
            report.interval_start_s < now.timestamp(),
        )
        .order_by(report.interval_start_s.desc())
    ).all()
    per_interval = line_counts(session, camera.id, [start for start, _, _ in reports])
    totals: dict[LineKey, int] = defaultdict(int)
    for counts in per_interval.values():
        for key, n in counts.items():
            totals[key] += n
    return LiveOut(
        camera_id=camera.id,
        interval_seconds=camera.interval_seconds,
        now=now,
        last_report_at=camera.last_report_at,
        intervals=[
            LiveInterval(
                start=datetime.fromtimestamp(start, UTC),
                coverage=coverage,
                config_version=config_version,
                counts=listed(per_interval.get(start, {})),
            )
            for start, coverage, config_version in reports
        ],
        totals=listed(totals),
    )


def line_counts(
    session: Session, camera_id: str, starts: list[int]
) -> dict[int, dict[LineKey, int]]:
    """Per interval start: vehicles of every class per (line, direction)."""
    if not starts:
        return {}
    row = CountRecord
    statement = (
        select(row.interval_start_s, row.line, row.direction, func.sum(row.count))
        .where(row.camera_id == camera_id, row.interval_start_s.in_(starts))
        .group_by(row.interval_start_s, row.line, row.direction)
    )
    counts: dict[int, dict[LineKey, int]] = defaultdict(dict)
    for start, line, direction, n in session.execute(statement):
        counts[int(start)][(line, direction)] = int(n or 0)
    return counts


def listed(counts: dict[LineKey, int]) -> list[LineCount]:
    """Counts in line, then direction order."""
    return [
        LineCount(line=line, direction=direction, count=n)
        for (line, direction), n in sorted(counts.items())
    ]
