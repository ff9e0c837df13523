"""Storing interval reports: validated, idempotent, and all or nothing per batch.

Idempotency rests on the contract's deterministic report id: a resend of the same interval
hits the same id. Identical payloads are duplicates (nothing changes); different payloads are
conflicts (the first version stays, the caller is told with a 409). New reports in the same
batch are stored either way, so a device that drops a batch after a 409 loses nothing new.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.models import (
    Camera,
    CountRecord,
    DeviceHealth,
    IntervalReportRecord,
    ZoneRecord,
)
from api.schemas import IngestResult, ReportResult
from api.services.errors import ForbiddenError, UnknownLabelError
from api.services.rollups import RollupDelta
from contract import Heartbeat, IntervalReport

MAX_LABEL_PROBLEMS = 10


@dataclass(frozen=True, slots=True)
class PreparedReport:
    """A report with its canonical payload and digest, the basis of duplicate detection."""

    report: IntervalReport
    payload: dict[str, Any]
    digest: str

    @classmethod
    def of(cls, report: IntervalReport) -> PreparedReport:
        """Canonical JSON (sorted keys, UTC times) so equal reports hash equal."""
        payload = report.model_dump(mode="json")
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return cls(report, payload, hashlib.sha256(canonical.encode()).hexdigest())


def check_labels(camera: Camera, reports: list[IntervalReport]) -> None:
    """Every line, direction and zone must be one the camera is registered with."""
    directions = {line.name: set(line.directions.values()) for line in camera.lines}
    zones = {zone.name for zone in camera.zones}
    problems: list[str] = []
    for report in reports:
        where = f"report {report.report_id} ({report.interval_start.isoformat()})"
        for row in report.counts:
            if row.line not in directions:
                problems.append(
                    f"{where}: camera {camera.id!r} has no line {row.line!r}"
                    f" (lines: {', '.join(sorted(directions)) or 'none'})"
                )
            elif row.direction not in directions[row.line]:
                problems.append(
                    f"{where}: line {row.line!r} has no direction {row.direction!r}"
                    f" (directions: {', '.join(sorted(directions[row.line]))})"
                )
        problems += [
            f"{where}: camera {camera.id!r} has no zone {z.zone!r}"
            f" (zones: {', '.join(sorted(zones)) or 'none'})"
            for z in report.zones
            if z.zone not in zones
        ]
    if problems:
        unique = list(dict.fromkeys(problems))
        more = len(unique) - MAX_LABEL_PROBLEMS
        shown = unique[:MAX_LABEL_PROBLEMS] + ([f"... and {more} more"] if more > 0 else [])
        raise UnknownLabelError("; ".join(shown))


def check_ownership(camera: Camera, camera_ids: list[str]) -> None:
    """A device token speaks for its own camera only."""
    foreign = sorted({c for c in camera_ids if c != camera.id})
    if foreign:
        raise ForbiddenError(
            f"this token belongs to camera {camera.id!r} and cannot post for {', '.join(foreign)}"
        )


def ingest_batch(session: Session, camera: Camera, reports: list[IntervalReport]) -> IngestResult:
    """Validate and store a batch in one transaction; retry once if a concurrent resend won."""
    check_ownership(camera, [r.camera_id for r in reports])
    check_labels(camera, reports)
    prepared = [PreparedReport.of(r) for r in reports]
    try:
        return store(session, camera, prepared)
    except IntegrityError:
        session.rollback()
        return store(session, camera, prepared)


def store(session: Session, camera: Camera, prepared: list[PreparedReport]) -> IngestResult:
    """Classify each report against what is stored, insert the new ones, commit."""
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
    now = datetime.now(UTC)
    insert_reports(session, fresh, now)
    camera.last_seen_at = now
    if fresh:
        camera.last_report_at = now
    session.commit()
    return IngestResult(
        created=len(fresh),
        duplicates=sum(r.status == "duplicate" for r in results),
        conflicts=sum(r.status == "conflict" for r in results),
        results=results,
    )


def insert_reports(session: Session, fresh: list[PreparedReport], received_at: datetime) -> None:
    """Bulk-insert reports, their rows and the rollup increments."""
    if not fresh:
        return
    report_rows, count_rows, zone_rows = [], [], []
    delta = RollupDelta()
    for item in fresh:
        report = item.report
        start_s = int(report.interval_start.timestamp())
        key = {"camera_id": report.camera_id, "interval_start_s": start_s}
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


def record_heartbeat(session: Session, camera: Camera, heartbeat: Heartbeat) -> DeviceHealth:
    """Keep the latest heartbeat per camera and mark the camera as seen."""
    check_ownership(camera, [heartbeat.camera_id])
    now = datetime.now(UTC)
    health = session.get(DeviceHealth, camera.id) or DeviceHealth(camera_id=camera.id)
    health.received_at = now
    health.sent_at = heartbeat.sent_at
    health.uptime_s = heartbeat.uptime_s
    health.outbox_backlog = heartbeat.outbox_backlog
    health.dropped_reports = heartbeat.dropped_reports
    health.config_version = heartbeat.config_version
    health.streams = [s.model_dump() for s in heartbeat.streams]
    session.add(health)
    camera.last_seen_at = now
    camera.reported_config_version = heartbeat.config_version
    session.commit()
    return health
