"""Validation sessions: a person tallies vehicles at the roadside, the camera counts the same
window, and the two are compared per line, direction and class.

The window is whole report intervals from the next interval boundary, so the camera's counts
for it are whole stored reports (no pro-rating). The lines, directions and classes to tally
are fixed when the session opens, so a configuration saved meanwhile changes neither the sheet
nor what is compared. The result is computed from what is stored; it is final once every
interval of the window has a report that watched all of it, and until then it says how much
of the window the stored reports cover (a late report is a gap, never a zero).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from api.commissioning_schemas import (
    ResultRow,
    ValidationLine,
    ValidationOut,
    ValidationResult,
    ValidationStatus,
    result_of,
)
from api.models import (
    Camera,
    CountRecord,
    IntervalReportRecord,
    ValidationSession,
)
from api.services.audit import CLI_ACTOR, Origin
from api.services.camera_config import latest_config, setup_of
from api.services.errors import AlreadyExistsError, NotFoundError, RejectedError
from api.services.scope import Audience
from contract import VEHICLE_CLASSES, VehicleClass
from contract.camera import CameraSetup
from contract.camera import CountLine as SetupLine

AXES = (("down", "up"), ("left", "right"))
"""A line is crossed along one of these: horizontal lines down/up, vertical ones left/right."""
MAX_PROBLEMS = 10
TallyKey = tuple[str, str, str]


class SessionStateError(AlreadyExistsError):
    """The session's state does not allow this (a 409): it is no longer open, or its window
    has not ended yet."""


def window_for(now: datetime, interval_s: int, minutes: int) -> tuple[int, int]:
    """Start and end (epoch seconds) of `minutes` rounded up to whole intervals, from the
    first interval boundary at or after `now`."""
    first = -(-math.ceil(now.timestamp()) // interval_s) * interval_s
    intervals = -(-minutes * 60 // interval_s)
    return first, first + intervals * interval_s


def tally_directions(directions: Mapping[str, str]) -> list[str]:
    """The labels a line can report: a renamed direction tells its axis; with none renamed,
    both axes (the registry has no geometry to tell which one the line lies across)."""
    named = [axis for axis in AXES if any(directions.get(g, g) != g for g in axis)]
    return [directions.get(g, g) for axis in named or AXES for g in axis]


def newest_setup(session: Session, camera_id: str) -> CameraSetup | None:
    """The camera's newest stored set-up, if it has one."""
    record = latest_config(session, camera_id)
    return setup_of(record) if record is not None else None


PLAUSIBLE_SCALES = ((1.0, 2.0), (2.5, 1.0))
"""Relative coordinates are scaled by the frame's shape: from a 1:2 portrait to a 2.5:1 frame."""


def setup_directions(line: SetupLine, setup: CameraSetup) -> list[str]:
    """The two labels the worker reports for a line of a stored set-up: exact for pixel
    coordinates, and for relative ones when every plausible frame shape gives the same axis."""
    scales = [(1.0, 1.0)] if setup.reference_resolution else PLAUSIBLE_SCALES
    axes = {line.crossing_directions(scale) for scale in scales}
    if len(axes) > 1:
        return tally_directions({str(g): label for g, label in line.direction_names.items()})
    return [line.direction_names.get(g, g) for g in axes.pop()]


class TallySheet:
    """What a camera's tally may hold: its lines, their directions and its classes."""

    def __init__(self, lines: Sequence[ValidationLine], classes: Sequence[VehicleClass]) -> None:
        self.lines = list(lines)
        self.classes = list(classes)
        self.keys: list[TallyKey] = [
            (x.line, d, c) for x in self.lines for d in x.directions for c in self.classes
        ]

    @classmethod
    def of_session(cls, session: Session, record: ValidationSession, camera: Camera) -> TallySheet:
        """The sheet the session opened with (a session from before sheets were kept: the
        camera's current one)."""
        if record.sheet is None:
            return cls.of(session, camera)
        lines = [ValidationLine.model_validate(x) for x in record.sheet["lines"]]
        return cls(lines, [cast(VehicleClass, c) for c in record.sheet["classes"]])

    def stored(self) -> dict[str, Any]:
        """The form kept with a session."""
        return {"lines": [x.model_dump() for x in self.lines], "classes": self.classes}

    @classmethod
    def of(cls, session: Session, camera: Camera) -> TallySheet:
        """From the newest stored set-up (its geometry tells each line's two directions), else
        from the registry's line labels."""
        setup = newest_setup(session, camera.id)
        if setup is None:
            registered = [
                ValidationLine(line=x.name, directions=tally_directions(x.directions))
                for x in camera.lines
            ]
            return cls(registered, VEHICLE_CLASSES)
        lines = [
            ValidationLine(line=x.name, directions=setup_directions(x, setup)) for x in setup.lines
        ]
        return cls(lines, setup.counted_classes())

    def problems(self, manual: Mapping[str, int]) -> list[str]:
        """Keys the camera does not count: a line, direction or class it lacks."""
        known = {"/".join(key) for key in self.keys}
        return [
            f"{key!r} is not a line/direction/class of this camera"
            for key in manual
            if key not in known
        ]


def open_session(
    session: Session, camera: Camera, minutes: int, origin: Origin, now: datetime
) -> ValidationSession:
    """A session whose window starts at the camera's next interval boundary, with the camera's
    sheet as it is now."""
    starts, ends = window_for(now, camera.interval_seconds, minutes)
    record = ValidationSession(
        sheet=TallySheet.of(session, camera).stored(),
        camera_id=camera.id,
        starts_at_s=starts,
        ends_at_s=ends,
        status="open",
        created_by=origin.principal.actor if origin.principal else CLI_ACTOR,
        created_at=now,
        manual={},
    )
    session.add(record)
    session.flush()
    origin.record(
        session,
        "validation.create",
        camera.id,
        {"session": record.id, "starts_at_s": starts, "ends_at_s": ends},
    )
    return record


def require_session(
    session: Session, audience: Audience, session_id: int
) -> tuple[ValidationSession, Camera]:
    """The session and its camera when the audience may see the camera's site; otherwise the
    same 404 as for a session that does not exist."""
    record = session.get(ValidationSession, session_id)
    camera = session.get(Camera, record.camera_id) if record is not None else None
    if record is None or camera is None or not audience.may_see(camera.site):
        raise NotFoundError(f"validation session {session_id} does not exist")
    return record, camera


def split_key(key: str) -> TallyKey:
    """``line/direction/class`` as its three parts (the tally's keys are checked on saving)."""
    line, direction, vehicle_class = key.split("/")
    return line, direction, vehicle_class


def require_open(record: ValidationSession) -> None:
    if record.status != "open":
        raise SessionStateError(f"validation session {record.id} is {record.status}")


def save_tally(
    session: Session,
    record: ValidationSession,
    sheet: TallySheet,
    manual: Mapping[str, int],
    origin: Origin,
) -> None:
    """Replace the whole tally (the page sends it after every tap, so a resend is harmless and
    leaves no audit event; a change does, with the new total)."""
    require_open(record)
    problems = sheet.problems(manual)
    if problems:
        raise RejectedError("; ".join(problems[:MAX_PROBLEMS]))
    tally = dict(sorted(manual.items()))
    if tally == record.manual:
        return
    record.manual = tally
    details = {"session": record.id, "keys": len(tally), "manual_total": sum(tally.values())}
    origin.record(session, "validation.tally", record.camera_id, details)


def finish_session(
    session: Session, record: ValidationSession, sheet: TallySheet, origin: Origin, now: datetime
) -> None:
    """Close the tally and compare it; only after the window, which the tally has to cover."""
    require_open(record)
    if now.timestamp() < record.ends_at_s:
        ends = datetime.fromtimestamp(record.ends_at_s, UTC).isoformat()
        raise SessionStateError(
            f"validation session {record.id} counts until {ends}; finish it after that, or"
            " cancel it"
        )
    record.status, record.finished_at = "finished", now
    result = settle(session, record, sheet)
    origin.record(
        session,
        "validation.finish",
        record.camera_id,
        {
            "session": record.id,
            "manual_total": result.manual_total,
            "automatic_total": result.automatic_total,
            "accuracy": record.accuracy,
            "complete": result.complete,
        },
    )


def cancel_session(
    session: Session, record: ValidationSession, origin: Origin, now: datetime
) -> None:
    """Drop the tally's comparison: nothing is computed for a cancelled session."""
    require_open(record)
    record.status, record.finished_at = "cancelled", now
    origin.record(session, "validation.cancel", record.camera_id, {"session": record.id})


def settle(session: Session, record: ValidationSession, sheet: TallySheet) -> ValidationResult:
    """A finished session's result: final once complete, recomputed until then as late
    reports arrive, and written only when it changed (reading twice writes nothing)."""
    stored = result_of(record.result)
    if stored is not None and stored.complete:
        return stored
    result = compare(session, record, sheet)
    if result != stored:
        record.result = result.model_dump(mode="json")
        record.accuracy = accuracy(result.manual_total, result.automatic_total)
    return result


def accuracy(manual_total: int, automatic_total: int) -> float | None:
    """1 - |automatic - manual| / manual, never below 0 (a camera counting more than twice the
    tally is as wrong as one counting nothing); None when nothing was counted by hand."""
    if manual_total == 0:
        return None
    return max(0.0, 1 - abs(automatic_total - manual_total) / manual_total)


def compare(session: Session, record: ValidationSession, sheet: TallySheet) -> ValidationResult:
    """Manual against the camera's stored counts over the window, on every key of the sheet
    and every other key either side counted; the totals and the error are over the sheet's
    keys only (what the person was asked to count)."""
    report = IntervalReportRecord
    inside = and_(
        report.camera_id == record.camera_id,
        report.interval_start_s >= record.starts_at_s,
        report.interval_start_s + report.interval_seconds <= record.ends_at_s,
    )
    watched, reported = session.execute(
        select(
            func.sum(report.coverage * report.interval_seconds), func.sum(report.interval_seconds)
        ).where(inside)
    ).one()
    automatic = automatic_counts(session, inside)
    manual = {split_key(key): n for key, n in record.manual.items()}
    rows = sorted(
        {*sheet.keys, *manual, *automatic}, key=lambda k: (k[0], k[1], VEHICLE_CLASSES.index(k[2]))
    )
    window = record.ends_at_s - record.starts_at_s
    manual_total = sum(manual.values())
    errors = sum(abs(automatic.get(k, 0) - manual.get(k, 0)) for k in sheet.keys)
    return ValidationResult(
        rows=[
            ResultRow(
                line=line,
                direction=direction,
                vehicle_class=vehicle_class,
                manual=manual.get((line, direction, vehicle_class), 0),
                automatic=automatic.get((line, direction, vehicle_class), 0),
            )
            for line, direction, vehicle_class in rows
        ],
        manual_total=manual_total,
        automatic_total=sum(automatic.get(k, 0) for k in sheet.keys),
        absolute_error=errors / manual_total if manual_total else None,
        coverage=float(watched or 0) / window,
        complete=int(reported or 0) == window and float(watched or 0) >= window,
    )


def automatic_counts(session: Session, inside: Any) -> dict[TallyKey, int]:
    """The camera's counts per line, direction and class over the reports `inside` selects."""
    row, report = CountRecord, IntervalReportRecord
    statement = (
        select(row.line, row.direction, row.vehicle_class, func.sum(row.count))
        .join(
            report,
            and_(
                report.camera_id == row.camera_id,
                report.interval_start_s == row.interval_start_s,
            ),
        )
        .where(inside)
        .group_by(row.line, row.direction, row.vehicle_class)
    )
    counts: dict[TallyKey, int] = defaultdict(int)
    for line, direction, vehicle_class, n in session.execute(statement):
        counts[(line, direction, vehicle_class)] += int(n or 0)
    return counts


def session_out(session: Session, record: ValidationSession, sheet: TallySheet) -> ValidationOut:
    """The session as the API shows it; a finished one's result settled first."""
    result = settle(session, record, sheet) if record.status == "finished" else None
    return ValidationOut(
        id=record.id,
        camera_id=record.camera_id,
        starts_at=datetime.fromtimestamp(record.starts_at_s, UTC),
        ends_at=datetime.fromtimestamp(record.ends_at_s, UTC),
        status=cast(ValidationStatus, record.status),
        created_by=record.created_by,
        created_at=record.created_at,
        finished_at=record.finished_at,
        lines=sheet.lines,
        classes=sheet.classes,
        manual=record.manual,
        result=result,
        accuracy=record.accuracy if result is not None else None,
    )


def camera_sessions(session: Session, camera: Camera, limit: int) -> list[ValidationOut]:
    """The camera's sessions, newest first, each with its own sheet."""
    records = session.scalars(
        select(ValidationSession)
        .where(ValidationSession.camera_id == camera.id)
        .order_by(ValidationSession.id.desc())
        .limit(limit)
    )
    return [
        session_out(session, record, TallySheet.of_session(session, record, camera))
        for record in records
    ]
