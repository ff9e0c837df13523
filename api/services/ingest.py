"""Storing interval reports: validated, idempotent, and all or nothing per batch.

Idempotency rests on the contract's deterministic report id: a resend of the same interval
hits the same id. Identical payloads are duplicates (nothing changes); different payloads are
conflicts (the first version stays, the caller is told with a 409). New reports in the same
batch are stored either way, so a device that drops a batch after a 409 loses nothing new.

The reports a batch would add are checked before anything is stored, and a batch with any
problem is refused whole (422, every problem named). A report is checked against the
configuration version it was counted with when the API stores that version (its `Layout`),
else against the camera's registration. The caller owns the transaction: nothing here commits.
"""

from __future__ import annotations

import hashlib
import json
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, or_, select, true
from sqlalchemy.orm import Session

from api.models import (
    Base,
    Camera,
    CameraTraffic,
    CountRecord,
    DeviceHealth,
    IntervalReportRecord,
    MovementRecord,
    UnmatchedRecord,
    ZoneRecord,
)
from api.schemas import IngestResult, ReportResult, direction_labels
from api.services.bulk import JsonText, insert_new_rows
from api.services.camera_config import cameras_report_setups
from api.services.errors import DomainError, ForbiddenError, RejectedError
from api.services.rollups import RollupDelta, bucket_start, upsert_add
from api.settings import Settings
from contract import INTERVAL_CHOICES_S, Heartbeat, IntervalReport
from contract.camera import CameraSetup
from contract.report import ContractModel

MAX_PROBLEMS = 10
CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"))
"""Sorted keys, no spaces; one encoder for all (`json.dumps` with options builds one a call)."""
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
    earliest_start_s: float = field(init=False)
    latest_end_s: float = field(init=False)
    """The bounds in seconds since 1970, worked out once: every new report meets them twice."""

    def __post_init__(self) -> None:
        now_s = self.now.timestamp()
        object.__setattr__(self, "earliest_start_s", now_s - self.max_age.total_seconds())
        object.__setattr__(self, "latest_end_s", now_s + self.max_ahead.total_seconds())

    @classmethod
    def from_settings(cls, settings: Settings, now: datetime) -> AcceptWindow:
        return cls(
            now,
            timedelta(days=settings.ingest_max_age_days),
            timedelta(seconds=settings.ingest_max_ahead_s),
        )

    def problem(self, report: IntervalReport) -> str | None:
        """Why the report's interval is outside the window, or None."""
        start_s = report.interval_start_s
        if start_s < self.earliest_start_s:
            return f"starts more than {self.max_age.days} days before server time {stamp(self.now)}"
        if start_s + report.interval_seconds > self.latest_end_s:
            return (
                f"ends more than {self.max_ahead.total_seconds():.0f} s after"
                f" server time {stamp(self.now)}"
            )
        return None


@dataclass(frozen=True, slots=True)
class PreparedReport:
    """A report with its JSON and digest, the basis of duplicate detection."""

    report: IntervalReport
    text: str
    """The report's JSON as the contract writes it (one text for equal reports): stored as
    its payload, hashed for its digest."""
    digest: str
    size: int
    """Bytes of `text`: a report's weight when a batch's bytes are shared."""

    @classmethod
    def of(cls, report: IntervalReport) -> PreparedReport:
        text = report.model_dump_json()
        encoded = text.encode()
        return cls(report, text, hashlib.sha256(encoded).hexdigest(), len(encoded))

    def is_stored_as(self, digest: str) -> bool:
        """Whether a stored report of this one's id, with `digest`, is this report.

        Reports stored before the ingest rework (issue 12) carry the digest of canonical
        JSON (sorted keys, Python's number format: three times the cost); it is met too, so a
        resend of such a report stays a duplicate. Only a report that differs costs both.
        """
        return digest in (self.digest, canonical_digest(self.report))


def canonical_digest(report: IntervalReport) -> str:
    """The digest of the report's canonical JSON (sorted keys, UTC times)."""
    canonical = CANONICAL_JSON.encode(report.model_dump(mode="json"))
    return hashlib.sha256(canonical.encode()).hexdigest()


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


def traffic_row(
    camera_id: str,
    now: datetime,
    *,
    report_bytes: int | None = None,
    heartbeat_bytes: int | None = None,
) -> dict[str, Any]:
    """One stored request's body bytes for the camera's hour (what crossed the wire, as this
    API measured it; the public register publishes the sums)."""
    return {
        "camera_id": camera_id,
        "hour_start_s": bucket_start(int(now.timestamp()), TRAFFIC_BUCKET_S),
        "report_bytes": report_bytes or 0,
        "report_requests": int(report_bytes is not None),
        "heartbeat_bytes": heartbeat_bytes or 0,
        "heartbeat_requests": int(heartbeat_bytes is not None),
    }


def count_traffic(session: Session, rows: list[dict[str, Any]]) -> None:
    """Add `traffic_row`s (one per camera) to the cameras' hours."""
    upsert_add(session, CameraTraffic.__table__, ("camera_id", "hour_start_s"), rows)


def stamp(moment: datetime) -> str:
    """ISO 8601 in UTC to the second (strftime would write year 1 as "1")."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def where(report: IntervalReport) -> str:
    return f"report {report.report_id} ({stamp(report.interval_start)})"


@dataclass(frozen=True, slots=True)
class Layout:
    """What a report may say: its interval length and the lines (with their direction labels)
    and zones it may name. That of the configuration version the report was counted with when
    the API stores that version, else the camera's registration: reports counted before a
    switch are still accepted after it."""

    camera_id: str
    version: int | None
    """None: the camera's registration."""
    interval_seconds: int
    directions: Mapping[str, frozenset[str]]
    zones: frozenset[str]

    @classmethod
    def registered(cls, camera: Camera) -> Layout:
        return cls(
            camera.id,
            None,
            camera.interval_seconds,
            {line.name: frozenset(line.directions.values()) for line in camera.lines},
            frozenset(zone.name for zone in camera.zones),
        )

    @classmethod
    def configured(cls, camera_id: str, version: int, setup: CameraSetup) -> Layout:
        return cls(
            camera_id,
            version,
            setup.interval_seconds,
            {x.name: frozenset(direction_labels(x.direction_names).values()) for x in setup.lines},
            frozenset(zone.name for zone in setup.zones),
        )

    @property
    def owner(self) -> str:
        """Whose lines and zones these are, for messages."""
        if self.version is None:
            return f"camera {self.camera_id!r}"
        return f"camera {self.camera_id!r} (configuration version {self.version})"

    @property
    def interval_name(self) -> str:
        if self.version is None:
            return f"camera {self.camera_id!r}'s registered interval"
        return f"camera {self.camera_id!r}'s interval in configuration version {self.version}"


def cameras_layouts(
    session: Session, batches: Sequence[tuple[Camera, list[IntervalReport]]]
) -> list[list[Layout]]:
    """Each report's layout, for the batches of several cameras (one each), in one query: no
    version or an unknown one is the camera's registration (its version 1 once versions are
    stored)."""
    versions = {
        camera.id: {r.config_version for r in reports if r.config_version is not None}
        for camera, reports in batches
    }
    found = cameras_report_setups(session, versions) if batches else {}
    return [batch_layouts(camera, reports, *found[camera.id]) for camera, reports in batches]


def batch_layouts(
    camera: Camera,
    reports: list[IntervalReport],
    setups: Mapping[int, CameraSetup],
    registration: tuple[int, CameraSetup] | None,
) -> list[Layout]:
    layouts: dict[int | None, Layout] = {
        v: Layout.configured(camera.id, v, setup) for v, setup in setups.items()
    }
    registered = (
        Layout.registered(camera)
        if registration is None
        else Layout.configured(camera.id, *registration)
    )
    return [layouts.get(r.config_version, registered) for r in reports]


def length_problems(reports: list[IntervalReport], layouts: list[Layout]) -> Iterator[str]:
    """A report's length must be its layout's: coverage and rollups assume one length."""
    for report, layout in zip(reports, layouts, strict=True):
        if report.interval_seconds != layout.interval_seconds:
            yield (
                f"{where(report)}: interval_seconds {report.interval_seconds} differs from"
                f" {layout.interval_name} of {layout.interval_seconds} s"
            )


def window_problems(window: AcceptWindow, reports: list[IntervalReport]) -> Iterator[str]:
    for report in reports:
        if (problem := window.problem(report)) is not None:
            yield f"{where(report)}: {problem}"


def overlap_problems(
    stored: StoredIntervals,
    window: AcceptWindow,
    reports: list[IntervalReport],
    layouts: list[Layout],
) -> Iterator[str]:
    """A report must not overlap another of another length, stored (left from before the
    camera's interval changed) or in the same batch (counted on both sides of a switch): both
    would count the same seconds, and coverage would exceed 1.

    Only reports of their layout's length inside the window are checked (the others are
    refused anyway). Aligned intervals of one length never overlap, so each length meets the
    stored reports of the other lengths.
    """
    fitting = [
        r
        for r, layout in zip(reports, layouts, strict=True)
        if r.interval_seconds == layout.interval_seconds and window.problem(r) is None
    ]
    yield from batch_overlaps(fitting)
    for length in sorted({r.interval_seconds for r in fitting}):
        group = [r for r in fitting if r.interval_seconds == length]
        yield from stored_overlaps(stored, length, group)


def batch_overlaps(reports: list[IntervalReport]) -> Iterator[str]:
    """Reports of the batch that overlap an earlier one of it (new reports have distinct
    starts, so any overlap is between two lengths)."""
    reaching: IntervalReport | None = None  # the report seen so far that ends last
    for report in sorted(reports, key=lambda r: r.interval_start_s):
        if reaching is not None and report.interval_start_s < end_of(reaching):
            yield (
                f"{where(report)}: overlaps the {reaching.interval_seconds}-s report from"
                f" {stamp(reaching.interval_start)} in the same batch; a camera's intervals"
                " must not overlap"
            )
        if reaching is None or end_of(report) > end_of(reaching):
            reaching = report


@dataclass(frozen=True, slots=True)
class StoredIntervals:
    """What one read finds stored for a batch's camera: the reports at the batch's starts
    (their digests classify resends) and the reports of other lengths near the batch (they
    may overlap it), ordered by start."""

    digests: Mapping[int, str]
    """Payload digest by interval start."""
    starts: list[int]
    lengths: list[int]

    @classmethod
    def load_cameras(
        cls, session: Session, batches: Mapping[str, list[IntervalReport]]
    ) -> dict[str, StoredIntervals]:
        """What is stored for the batches of several cameras (by camera id), in one query."""
        near = [nearby(camera_id, reports) for camera_id, reports in batches.items() if reports]
        found: dict[str, list[tuple[int, int, str]]] = {camera_id: [] for camera_id in batches}
        if near:
            table = table_of(IntervalReportRecord)
            rows = session.execute(
                select(
                    table.c.camera_id,
                    table.c.interval_start_s,
                    table.c.interval_seconds,
                    table.c.payload_sha256,
                )
                .where(or_(*near))
                .order_by(table.c.camera_id, table.c.interval_start_s)
            )
            for camera_id, start, length, digest in rows:
                found[camera_id].append((start, length, digest))
        return {
            camera_id: cls(
                {start: digest for start, _, digest in rows},
                [start for start, _, _ in rows],
                [length for _, length, _ in rows],
            )
            for camera_id, rows in found.items()
        }


def nearby(camera_id: str, reports: list[IntervalReport]) -> ColumnElement[bool]:
    """The stored reports of a camera that a batch of its reports may meet: those at the
    batch's starts (resends) and those of other lengths near it (overlaps).

    The starts go as runs (a backlog's are one), not as a list: a few parameters a camera,
    where a list of a group's 2,000 starts cost more to send than the rows it found.
    """
    starts = sorted({r.interval_start_s for r in reports})
    lengths = {r.interval_seconds for r in reports}
    table = table_of(IntervalReportRecord)
    start = table.c.interval_start_s
    near: ColumnElement[bool] = true()  # several lengths: any stored length may overlap one
    if len(lengths) == 1:
        length = next(iter(lengths))
        # A run's starts are one length apart: what else lies between them is of another
        # length, and asked for anyway.
        near = or_(
            *(start.between(first, last) for first, last in runs(starts, length)),
            table.c.interval_seconds != length,
        )
    return and_(
        table.c.camera_id == camera_id,
        start > starts[0] - LONGEST_INTERVAL_S,
        start < starts[-1] + LONGEST_INTERVAL_S,
        near,
    )


def runs(starts: list[int], step: int) -> list[tuple[int, int]]:
    """Sorted `starts` as (first, last) runs of starts `step` apart."""
    found: list[tuple[int, int]] = []
    first = previous = starts[0]
    for start in starts[1:]:
        if start - previous != step:
            found.append((first, previous))
            first = start
        previous = start
    return [*found, (first, previous)]


def stored_overlaps(
    stored: StoredIntervals, length: int, reports: list[IntervalReport]
) -> Iterator[str]:
    """Reports of one length that overlap a stored report of another length."""
    for report in reports:
        start = report.interval_start_s
        end = start + report.interval_seconds
        low = bisect_right(stored.starts, start - LONGEST_INTERVAL_S)
        high = bisect_left(stored.starts, end)
        hit = next(
            (
                (s, n)
                for s, n in zip(stored.starts[low:high], stored.lengths[low:high], strict=True)
                if n != length and s + n > start
            ),
            None,
        )
        if hit is not None:
            yield (
                f"{where(report)}: overlaps the stored {hit[1]}-s report from"
                f" {stamp(datetime.fromtimestamp(hit[0], UTC))}; a camera's intervals must not"
                " overlap"
            )


def label_problems(reports: list[IntervalReport], layouts: list[Layout]) -> Iterator[str]:
    """Every line, direction, zone and gate must be one of the report's layout."""
    for report, layout in zip(reports, layouts, strict=True):
        for problem in report_label_problems(report, layout):
            yield f"{where(report)}: {problem}"


def report_label_problems(report: IntervalReport, layout: Layout) -> Iterator[str]:
    directions = layout.directions
    lines = ", ".join(sorted(directions)) or "none"
    for row in report.counts:
        if row.line not in directions:
            yield f"{layout.owner} has no line {row.line!r} (lines: {lines})"
        elif row.direction not in directions[row.line]:
            yield (
                f"line {row.line!r} of {layout.owner} has no direction {row.direction!r}"
                f" (directions: {', '.join(sorted(directions[row.line]))})"
            )
    for z in report.zones:
        if z.zone not in layout.zones:
            yield (
                f"{layout.owner} has no zone {z.zone!r}"
                f" (zones: {', '.join(sorted(layout.zones)) or 'none'})"
            )
    gates = [g for m in report.movements for g in (m.origin, m.destination)]
    for gate in dict.fromkeys([*gates, *(u.gate for u in report.unmatched)]):
        if gate not in directions:
            yield f"{layout.owner} has no line {gate!r} to be a gate (lines: {lines})"


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


@dataclass(frozen=True, slots=True)
class Submission:
    """One request's batch: the camera its token belongs to, its reports and its body size
    (None: not measured)."""

    camera: Camera
    reports: list[IntervalReport]
    wire_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class Classified:
    """A submission's reports against what is stored: every report's result, the new ones."""

    submission: Submission
    prepared: list[PreparedReport]
    results: list[ReportResult]
    fresh: list[PreparedReport]

    def shares(self) -> dict[str, int]:
        """The body's bytes shared by each report's canonical size, by report id."""
        wire_bytes = self.submission.wire_bytes
        shares: dict[str, int] = {}
        if wire_bytes is not None:
            split = apportion(wire_bytes, [p.size for p in self.prepared])
            for item, share in zip(self.prepared, split, strict=True):
                shares[item.report.report_id] = shares.get(item.report.report_id, 0) + share
        return shares

    def result(self) -> IngestResult:
        return IngestResult(
            created=len(self.fresh),
            duplicates=sum(r.status == "duplicate" for r in self.results),
            conflicts=sum(r.status == "conflict" for r in self.results),
            results=self.results,
        )


Outcome = IngestResult | DomainError
"""What a submission is told: its result, or the error that refuses it whole."""


def ingest_batch(
    session: Session,
    camera: Camera,
    reports: list[IntervalReport],
    window: AcceptWindow,
    wire_bytes: int | None = None,
) -> IngestResult:
    """One batch (see `ingest_group`); a refused batch raises its error."""
    outcome = ingest_group(session, [Submission(camera, reports, wire_bytes)], window)[0]
    if isinstance(outcome, DomainError):
        raise outcome
    return outcome


def ingest_group(
    session: Session, submissions: Sequence[Submission], window: AcceptWindow
) -> list[Outcome]:
    """Classify each batch against what is stored, check every report it would add, then add
    the new reports of every batch that passed. The caller commits (and, should a concurrent
    resend of the same report win the race to insert it, rolls back and calls this again).

    Each batch is judged on its own, so one refused batch stores nothing and costs the
    others nothing; the reads and writes are shared, one statement per table for each turn of
    batches of distinct cameras (the rollups, traffic and camera times once for the group).
    Batches of the same camera go in turn, each seeing what the one before added.
    `wire_bytes`, the size of a request body received, goes to the camera's hourly traffic
    and, shared by each report's canonical size, to the stored reports.
    """
    outcomes: dict[int, Outcome] = {}
    tally = GroupTally(datetime.now(UTC))
    waiting = list(range(len(submissions)))
    while waiting:
        turn: list[int] = []
        later: list[int] = []
        for i in waiting:
            busy = any(submissions[j].camera.id == submissions[i].camera.id for j in turn)
            (later if busy else turn).append(i)
        judged = ingest_turn(session, [submissions[i] for i in turn], window, tally)
        outcomes |= dict(zip(turn, judged, strict=True))
        waiting = later
    tally.apply(session)
    return [outcomes[i] for i in range(len(submissions))]


@dataclass
class GroupTally:
    """What a group adds besides its raw rows, summed over its turns and written once at its
    end, each table's rows in key order: two groups adding to the same rows (one camera's
    backlog split over two processes) then lock them in the same order and cannot deadlock."""

    now: datetime
    rollups: RollupDelta = field(default_factory=RollupDelta)
    traffic: dict[str, list[int]] = field(default_factory=dict)
    """The body sizes of the accepted requests, by camera id."""
    cameras: dict[str, Camera] = field(default_factory=dict)
    """The cameras of the accepted batches, by id."""
    reported: set[str] = field(default_factory=set)
    """The cameras whose accepted batches added a report."""

    def accept(self, item: Classified, layouts: list[Layout]) -> None:
        submission = item.submission
        camera_id = submission.camera.id
        for prepared, layout in zip(item.fresh, layouts, strict=True):
            self.rollups.add(prepared.report, gates=len(layout.directions))
        if submission.wire_bytes is not None:
            self.traffic.setdefault(camera_id, []).append(submission.wire_bytes)
        self.cameras[camera_id] = submission.camera
        if item.fresh:
            self.reported.add(camera_id)

    def apply(self, session: Session) -> None:
        self.rollups.apply(session)
        hour = [
            traffic_row(camera_id, self.now, report_bytes=sum(sizes))
            | {"report_requests": len(sizes)}
            for camera_id, sizes in self.traffic.items()
        ]
        count_traffic(session, hour)
        for camera_id, camera in self.cameras.items():
            camera.last_seen_at = self.now
            if camera_id in self.reported:
                camera.last_report_at = self.now


def ingest_turn(
    session: Session, submissions: list[Submission], window: AcceptWindow, tally: GroupTally
) -> list[Outcome]:
    """`ingest_group` for batches of distinct cameras: one read, one write per raw table; the
    rest the group's tally adds at its end."""
    outcomes: dict[int, Outcome] = {}
    owned: dict[int, Submission] = {}
    for i, submission in enumerate(submissions):
        try:
            check_ownership(submission.camera, [r.camera_id for r in submission.reports])
            owned[i] = submission
        except DomainError as exc:
            outcomes[i] = exc
    stored = StoredIntervals.load_cameras(session, {s.camera.id: s.reports for s in owned.values()})
    classified = {
        i: classify(s, stored[s.camera.id], [PreparedReport.of(r) for r in s.reports])
        for i, s in owned.items()
    }
    layouts = dict(
        zip(
            classified,
            cameras_layouts(
                session,
                [(c.submission.camera, [f.report for f in c.fresh]) for c in classified.values()],
            ),
            strict=True,
        )
    )
    accepted: dict[int, Classified] = {}
    for i, item in classified.items():
        try:
            check_new_reports(stored[item.submission.camera.id], window, item, layouts[i])
            accepted[i] = item
        except DomainError as exc:
            outcomes[i] = exc
    shares = {k: v for item in accepted.values() for k, v in item.shares().items()}
    insert_reports(
        session, [f for item in accepted.values() for f in item.fresh], tally.now, shares
    )
    for i, item in accepted.items():
        tally.accept(item, layouts[i])
    outcomes |= {i: item.result() for i, item in accepted.items()}
    return [outcomes[i] for i in range(len(submissions))]


def check_new_reports(
    stored: StoredIntervals, window: AcceptWindow, item: Classified, layouts: list[Layout]
) -> None:
    """Refuse the batch (every problem named) when a report it would add breaks a rule."""
    new = [f.report for f in item.fresh]
    refuse_problems(
        [
            *length_problems(new, layouts),
            *window_problems(window, new),
            *overlap_problems(stored, window, new, layouts),
            *label_problems(new, layouts),
        ]
    )


def classify(
    submission: Submission, stored: StoredIntervals, prepared: list[PreparedReport]
) -> Classified:
    """Each report against what is stored (created, duplicate or conflict), and the new ones.

    A report's id is derived from its camera and start (the contract checks it), so the
    stored report at the same start is the one with the same id.
    Only new reports meet the rules: an identical resend stays a harmless duplicate even after
    the camera's registration changed or its interval left the window.
    """
    known = dict(stored.digests)
    results: list[ReportResult] = []
    fresh: list[PreparedReport] = []
    for item in prepared:
        report_id, start = item.report.report_id, item.report.interval_start_s
        if start not in known:
            known[start] = item.digest
            fresh.append(item)
            results.append(ReportResult(report_id=report_id, status="created"))
        elif item.is_stored_as(known[start]):
            results.append(ReportResult(report_id=report_id, status="duplicate"))
        else:
            results.append(ReportResult(report_id=report_id, status="conflict"))
    return Classified(submission, prepared, results, fresh)


def insert_reports(
    session: Session,
    fresh: list[PreparedReport],
    received_at: datetime,
    wire_bytes: dict[str, int] | None = None,
) -> None:
    """Bulk-insert reports (with their share of the body's bytes) and their rows."""
    if not fresh:
        return
    report_rows: list[dict[str, Any]] = []
    rows: dict[type[Base], list[dict[str, Any]]] = {
        CountRecord: [],
        ZoneRecord: [],
        MovementRecord: [],
        UnmatchedRecord: [],
    }
    for item in fresh:
        report = item.report
        key = {"camera_id": report.camera_id, "interval_start_s": report.interval_start_s}
        report_rows.append(
            key
            | {
                "report_id": report.report_id,
                "interval_seconds": report.interval_seconds,
                "partial": report.partial,
                "coverage": report.coverage,
                "frames_processed": report.frames_processed,
                "fps": report.fps,
                "payload": JsonText(item.text),
                "payload_sha256": item.digest,
                "received_at": received_at,
                "wire_bytes": (wire_bytes or {}).get(report.report_id),
                "config_version": report.config_version,
            }
            | fields_of(report.health)
        )
        rows[CountRecord] += [key | fields_of(row) for row in report.counts]
        rows[ZoneRecord] += [key | fields_of(row) for row in report.zones]
        rows[MovementRecord] += [key | fields_of(row) for row in report.movements]
        rows[UnmatchedRecord] += [key | fields_of(row) for row in report.unmatched]
    insert_new_rows(session, table_of(IntervalReportRecord), report_rows)
    for model, values in rows.items():
        insert_new_rows(session, table_of(model), values)


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
    pull = heartbeat.config_pull
    health.config_pull = pull.model_dump(mode="json") if pull is not None else None
    health.streams = [s.model_dump() for s in heartbeat.streams]
    software = heartbeat.software
    health.software_version = software.version if software else None
    health.code_sha256 = software.code_sha256 if software else None
    health.model_sha256 = software.model_sha256 if software else None
    session.add(health)
    if wire_bytes is not None:
        count_traffic(session, [traffic_row(camera.id, now, heartbeat_bytes=wire_bytes)])
    camera.last_seen_at = now
    camera.reported_config_version = heartbeat.config_version
    return health


def fields_of(row: ContractModel) -> dict[str, Any]:
    """A contract row's fields by name, to read: pydantic keeps them as the instance dict,
    which `model_dump` copies at five times the cost (rows carry no computed attributes)."""
    return row.__dict__


def table_of(model: type[Base]) -> Table:
    """A model's table, for Core statements (no ORM bookkeeping per row)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def end_of(report: IntervalReport) -> int:
    return report.interval_start_s + report.interval_seconds
