"""Storing interval reports: validated, idempotent, and all or nothing per batch.

Idempotency rests on the contract's deterministic report id: a resend of the same interval
hits the same id. Identical payloads are duplicates (nothing changes); different payloads are
conflicts (the first version stays, the caller is told with a 409). New reports in the same
batch are stored either way, so a device that drops a batch after a 409 loses nothing new.

The reports a batch would add are checked before anything is stored, and a batch with any
problem is refused whole (422, every problem named). The caller owns the transaction: nothing
here commits.
"""

from __future__ import annotations

import hashlib
import json
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from api.models import (
    Camera,
    CameraTraffic,
    CountRecord,
    DeviceHealth,
    IntervalReportRecord,
    ZoneRecord,
)
from api.schemas import IngestResult, ReportResult
from api.services.errors import ForbiddenError, RejectedError
from api.services.rollups import RollupDelta, bucket_start, upsert_add
from api.settings import Settings
from contract import INTERVAL_CHOICES_S, Heartbeat, IntervalReport

MAX_PROBLEMS = 10
LONGEST_INTERVAL_S = max(INTERVAL_CHOICES_S)
TRAFFIC_BUCKET_S = 3600


@dataclass(frozen=True, slots=True)
class AcceptWindow:
    """Intervals accepted around server time: each new id is a row, so ids must be bounded.

    Without it, one stolen token could post year-1 to year-9999 intervals, an unlimited
    supply of new report ids, until the disk is full.
    """

    now: datetime
    max_age: timedelta
    max_ahead: timedelta

    @classmethod
    def from_settings(cls, settings: Settings, now: datetime) -> AcceptWindow:
        return cls(
            now,
            timedelta(days=settings.ingest_max_age_days),
            timedelta(seconds=settings.ingest_max_ahead_s),
        )

    def problem(self, report: IntervalReport) -> str | None:
        """Why the report's interval is outside the window, or None."""
        start, length = report.interval_start, timedelta(seconds=report.interval_seconds)
        if start < self.now - self.max_age:
            return f"starts more than {self.max_age.days} days before server time {stamp(self.now)}"
        if start > self.now + self.max_ahead - length:  # start + length could overflow year 9999
            return (
                f"ends more than {self.max_ahead.total_seconds():.0f} s after"
                f" server time {stamp(self.now)}"
            )
        return None


@dataclass(frozen=True, slots=True)
class PreparedReport:
    """A report with its canonical payload and digest, the basis of duplicate detection."""

    report: IntervalReport
    payload: dict[str, Any]
    digest: str
    size: int
    """Bytes of the canonical encoding: a report's weight when a batch's bytes are shared."""

    @classmethod
    def of(cls, report: IntervalReport) -> PreparedReport:
        """Canonical JSON (sorted keys, UTC times) so equal reports hash equal."""
        payload = report.model_dump(mode="json")
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        return cls(report, payload, hashlib.sha256(canonical).hexdigest(), len(canonical))


def apportion(total: int, weights: list[int]) -> list[int]:
    """`total` split in proportion to positive `weights`, in whole units that add up to
    `total` exactly (largest remainder first, ties to the earlier one)."""
    whole = sum(weights)
    quotas = [divmod(total * weight, whole) for weight in weights]
    shares = [share for share, _ in quotas]
    by_remainder = sorted(range(len(weights)), key=lambda i: -quotas[i][1])
    for i in by_remainder[: total - sum(shares)]:
        shares[i] += 1
    return shares


def count_traffic(
    session: Session,
    camera: Camera,
    now: datetime,
    *,
    report_bytes: int | None = None,
    heartbeat_bytes: int | None = None,
) -> None:
    """Add one stored request's body bytes to the camera's hour (what crossed the wire, as
    this API measured it; the public register publishes the sums)."""
    hour = bucket_start(int(now.timestamp()), TRAFFIC_BUCKET_S)
    row = {
        "camera_id": camera.id,
        "hour_start_s": hour,
        "report_bytes": report_bytes or 0,
        "report_requests": int(report_bytes is not None),
        "heartbeat_bytes": heartbeat_bytes or 0,
        "heartbeat_requests": int(heartbeat_bytes is not None),
    }
    upsert_add(session, CameraTraffic.__table__, ("camera_id", "hour_start_s"), [row])


def stamp(moment: datetime) -> str:
    """ISO 8601 in UTC to the second (strftime would write year 1 as "1")."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def where(report: IntervalReport) -> str:
    return f"report {report.report_id} ({stamp(report.interval_start)})"


def length_problems(camera: Camera, reports: list[IntervalReport]) -> Iterator[str]:
    """A report's length must be the camera's: coverage and rollups assume one length."""
    for report in reports:
        if report.interval_seconds != camera.interval_seconds:
            yield (
                f"{where(report)}: interval_seconds {report.interval_seconds} differs from"
                f" camera {camera.id!r}'s registered interval of {camera.interval_seconds} s"
            )


def window_problems(window: AcceptWindow, reports: list[IntervalReport]) -> Iterator[str]:
    for report in reports:
        if (problem := window.problem(report)) is not None:
            yield f"{where(report)}: {problem}"


def overlap_problems(
    session: Session, camera: Camera, window: AcceptWindow, reports: list[IntervalReport]
) -> Iterator[str]:
    """A report must not overlap a stored one of another length (left from before the camera's
    interval changed): both would count the same seconds, and coverage would exceed 1.

    Only reports of the camera's length inside the window are checked (the others are refused
    anyway, and the window bounds the query), so the batch itself holds one length, and
    aligned intervals of one length never overlap.
    """
    fitting = [
        r
        for r in reports
        if r.interval_seconds == camera.interval_seconds and window.problem(r) is None
    ]
    if not fitting:
        return
    starts = [epoch(r) for r in fitting]
    stored = session.execute(
        select(IntervalReportRecord.interval_start_s, IntervalReportRecord.interval_seconds)
        .where(
            IntervalReportRecord.camera_id == camera.id,
            IntervalReportRecord.interval_seconds != camera.interval_seconds,
            IntervalReportRecord.interval_start_s > min(starts) - LONGEST_INTERVAL_S,
            IntervalReportRecord.interval_start_s < max(starts) + camera.interval_seconds,
        )
        .order_by(IntervalReportRecord.interval_start_s)
    ).all()
    stored_starts = [start for start, _ in stored]
    for report, start in zip(fitting, starts, strict=True):
        end = start + report.interval_seconds
        candidates = stored[
            bisect_right(stored_starts, start - LONGEST_INTERVAL_S) : bisect_left(
                stored_starts, end
            )
        ]
        hit = next(((s, n) for s, n in candidates if s + n > start), None)
        if hit is not None:
            yield (
                f"{where(report)}: overlaps the stored {hit[1]}-s report from"
                f" {stamp(datetime.fromtimestamp(hit[0], UTC))}; a camera's intervals must not"
                " overlap"
            )


def label_problems(camera: Camera, reports: list[IntervalReport]) -> Iterator[str]:
    """Every line, direction and zone must be one the camera is registered with."""
    directions = {line.name: set(line.directions.values()) for line in camera.lines}
    zones = {zone.name for zone in camera.zones}
    for report in reports:
        for row in report.counts:
            if row.line not in directions:
                yield (
                    f"{where(report)}: camera {camera.id!r} has no line {row.line!r}"
                    f" (lines: {', '.join(sorted(directions)) or 'none'})"
                )
            elif row.direction not in directions[row.line]:
                yield (
                    f"{where(report)}: line {row.line!r} has no direction {row.direction!r}"
                    f" (directions: {', '.join(sorted(directions[row.line]))})"
                )
        for z in report.zones:
            if z.zone not in zones:
                yield (
                    f"{where(report)}: camera {camera.id!r} has no zone {z.zone!r}"
                    f" (zones: {', '.join(sorted(zones)) or 'none'})"
                )


def refuse_problems(problems: list[str]) -> None:
    """One 422 naming the first problems (a bad config repeats one in every report)."""
    if problems:
        unique = list(dict.fromkeys(problems))
        more = len(unique) - MAX_PROBLEMS
        shown = unique[:MAX_PROBLEMS] + ([f"... and {more} more"] if more > 0 else [])
        raise RejectedError("; ".join(shown))


def check_ownership(camera: Camera, camera_ids: list[str]) -> None:
    """A device token speaks for its own camera only."""
    foreign = sorted({c for c in camera_ids if c != camera.id})
    if foreign:
        raise ForbiddenError(
            f"this token belongs to camera {camera.id!r} and cannot post for {', '.join(foreign)}"
        )


def ingest_batch(
    session: Session,
    camera: Camera,
    reports: list[IntervalReport],
    window: AcceptWindow,
    wire_bytes: int | None = None,
) -> IngestResult:
    """Classify the batch against what is stored, check every report it would add, then add
    them. The caller commits (and, should a concurrent resend of the same report win the race
    to insert it, rolls back and calls this again).

    `wire_bytes`, the size of the request body received, goes to the camera's hourly traffic
    and, shared by each report's canonical size, to the stored reports (None: not measured).
    """
    check_ownership(camera, [r.camera_id for r in reports])
    prepared = [PreparedReport.of(r) for r in reports]
    results, fresh = classify(session, prepared)
    new = [item.report for item in fresh]
    refuse_problems(
        [
            *length_problems(camera, new),
            *window_problems(window, new),
            *overlap_problems(session, camera, window, new),
            *label_problems(camera, new),
        ]
    )
    now = datetime.now(UTC)
    shares: dict[str, int] = {}
    if wire_bytes is not None:
        split = apportion(wire_bytes, [p.size for p in prepared])
        for item, share in zip(prepared, split, strict=True):
            shares[item.report.report_id] = shares.get(item.report.report_id, 0) + share
    insert_reports(session, fresh, now, shares)
    if wire_bytes is not None:  # after the reports: their insert is this request's first write
        count_traffic(session, camera, now, report_bytes=wire_bytes)
    camera.last_seen_at = now
    if fresh:
        camera.last_report_at = now
    return IngestResult(
        created=len(fresh),
        duplicates=sum(r.status == "duplicate" for r in results),
        conflicts=sum(r.status == "conflict" for r in results),
        results=results,
    )


def classify(
    session: Session, prepared: list[PreparedReport]
) -> tuple[list[ReportResult], list[PreparedReport]]:
    """Each report against what is stored (created, duplicate or conflict), and the new ones.

    Only new reports meet the rules: an identical resend stays a harmless duplicate even after
    the camera's registration changed or its interval left the window.
    """
    ids = [p.report.report_id for p in prepared]
    known: dict[str, str] = dict(
        session.execute(
            select(IntervalReportRecord.report_id, IntervalReportRecord.payload_sha256).where(
                IntervalReportRecord.report_id.in_(ids)
            )
        ).all()
    )
    results: list[ReportResult] = []
    fresh: list[PreparedReport] = []
    for item in prepared:
        report_id = item.report.report_id
        if report_id not in known:
            known[report_id] = item.digest
            fresh.append(item)
            results.append(ReportResult(report_id=report_id, status="created"))
        elif known[report_id] == item.digest:
            results.append(ReportResult(report_id=report_id, status="duplicate"))
        else:
            results.append(ReportResult(report_id=report_id, status="conflict"))
    return results, fresh


def insert_reports(
    session: Session,
    fresh: list[PreparedReport],
    received_at: datetime,
    wire_bytes: dict[str, int] | None = None,
) -> None:
    """Bulk-insert reports (with their share of the body's bytes), rows and rollups."""
    if not fresh:
        return
    report_rows, count_rows, zone_rows = [], [], []
    delta = RollupDelta()
    for item in fresh:
        report = item.report
        key = {"camera_id": report.camera_id, "interval_start_s": epoch(report)}
        report_rows.append(
            key
            | {
                "report_id": report.report_id,
                "interval_seconds": report.interval_seconds,
                "partial": report.partial,
                "coverage": report.coverage,
                "frames_processed": report.frames_processed,
                "fps": report.fps,
                "payload": item.payload,
                "payload_sha256": item.digest,
                "received_at": received_at,
                "wire_bytes": (wire_bytes or {}).get(report.report_id),
            }
            | report.health.model_dump()
        )
        count_rows += [key | row.model_dump() for row in report.counts]
        zone_rows += [key | row.model_dump() for row in report.zones]
        delta.add(report)
    session.execute(insert(IntervalReportRecord), report_rows)
    if count_rows:
        session.execute(insert(CountRecord), count_rows)
    if zone_rows:
        session.execute(insert(ZoneRecord), zone_rows)
    delta.apply(session)


def record_heartbeat(
    session: Session, camera: Camera, heartbeat: Heartbeat, wire_bytes: int | None = None
) -> DeviceHealth:
    """Keep the latest heartbeat per camera and mark the camera as seen; `wire_bytes` (the
    body size received) goes to the camera's hourly traffic."""
    check_ownership(camera, [heartbeat.camera_id])
    foreign = sorted({s.camera_id for s in heartbeat.streams} - {camera.id})
    if foreign:
        raise RejectedError(
            f"heartbeat streams name camera {', '.join(map(repr, foreign))}: a device token"
            f" reports the streams of its own camera {camera.id!r} only"
        )
    now = datetime.now(UTC)
    health = session.get(DeviceHealth, camera.id) or DeviceHealth(camera_id=camera.id)
    health.received_at = now
    health.sent_at = heartbeat.sent_at
    health.uptime_s = heartbeat.uptime_s
    health.outbox_backlog = heartbeat.outbox_backlog
    health.dropped_reports = heartbeat.dropped_reports
    health.dead_lettered_reports = heartbeat.dead_lettered_reports
    health.config_version = heartbeat.config_version
    health.streams = [s.model_dump() for s in heartbeat.streams]
    software = heartbeat.software
    health.software_version = software.version if software else None
    health.code_sha256 = software.code_sha256 if software else None
    health.model_sha256 = software.model_sha256 if software else None
    session.add(health)
    if wire_bytes is not None:
        count_traffic(session, camera, now, heartbeat_bytes=wire_bytes)
    camera.last_seen_at = now
    camera.reported_config_version = heartbeat.config_version
    return health


def epoch(report: IntervalReport) -> int:
    return int(report.interval_start.timestamp())
