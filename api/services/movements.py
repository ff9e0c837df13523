"""Turning-movement counts (TMC) for planners: tables per 15 minutes or hour, the peak hour
and its PHF, heavy-vehicle share, PCU, and CSV / Synchro UTDF exports.

Read from the movement rollups; coverage from the movement coverage rollup, which only
reports that watched movements fill (v2, counted with two or more gates), so a bin no such
report covers is a gap (null), never zero: a version-1 report counts lines, not movements.
Movements are named with the camera's newest intersection layout, and PCU uses its newest PCU
factors (a camera without a stored set-up: defaults).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.models import Camera, MovementCoverageRollup, MovementRollup, UnmatchedRollup
from api.movement_responses import (
    ApproachPeak,
    ApproachSeries,
    Bin,
    Compass,
    IntersectionSeries,
    LegOut,
    MovementPeak,
    MovementPeakOut,
    MovementSeries,
    PeakFactor,
    TmcOut,
    UnmatchedSeries,
)
from api.params import TimeRange
from api.responses import CoveredBucket
from api.services.camera_config import latest_config, setup_of
from api.services.counts import CountSeries, Series
from api.services.errors import RejectedError
from api.services.grid import Grid, make_grid
from api.services.rollups import CLASS_COLUMNS, ROLLUP_GRANULARITIES_S, rollup_window
from api.services.scope import Audience, resolve_scope
from api.services.summaries import PEAK_WINDOW, peak_hour, peak_hour_factor, share
from contract import HEAVY_VEHICLE_CLASSES, VEHICLE_CLASSES, Movement, VehicleClass
from contract.planning import Intersection, PcuFactors

COMPASS: tuple[Compass, ...] = ("N", "E", "S", "W")
BOUND: dict[Compass, str] = {"N": "SB", "E": "WB", "S": "NB", "W": "EB"}
"""Vehicles entering from the north leg travel southbound, and so on (UTDF approaches)."""
UTDF_APPROACHES = ("NB", "SB", "EB", "WB")
UTDF_TURNS: dict[Movement, str] = {"left": "L", "through": "T", "right": "R", "u_turn": "U"}
UTDF_COLUMNS = [
    *(a + t for a in UTDF_APPROACHES for t in "LTR"),
    *(a + "U" for a in UTDF_APPROACHES),
]
UTDF_HEADINGS: dict[Bin, str] = {"15min": "15 Minute Counts", "1h": "60 Minute Counts"}
TMC_CSV_COLUMNS = (
    "interval_start",
    "interval_end",
    "coverage",
    "origin",
    "destination",
    "movement",
    "count",
)
DEFAULT_SPAN = timedelta(days=1)
MAX_SPAN = timedelta(days=93)
Cells = dict[tuple[str, ...], dict[VehicleClass, list[int]]]
"""Key (origin, destination or gate) -> class -> vehicles per bin."""


@dataclass(frozen=True, slots=True)
class IntersectionView:
    """A camera with the layout and PCU factors its movements are read with."""

    site: str
    camera: str
    layout: Intersection | None
    pcu: PcuFactors

    def movement(self, origin: str, destination: str) -> Movement | None:
        return self.layout.movement(origin, destination) if self.layout else None

    def legs(self) -> list[LegOut]:
        legs = self.layout.legs if self.layout else []
        return [
            LegOut(gate=x.gate, bearing_deg=x.bearing_deg, compass=compass(x.bearing_deg))
            for x in legs
        ]


def compass(bearing_deg: float) -> Compass:
    """The compass point nearest to a bearing."""
    return COMPASS[round(bearing_deg / 90) % 4]


def camera_view(session: Session, camera_id: str) -> IntersectionView:
    """The camera's newest layout and PCU factors (defaults without a stored set-up)."""
    camera = session.get(Camera, camera_id)
    assert camera is not None  # resolved through the audience's visible scope first
    record = latest_config(session, camera_id)
    setup = setup_of(record) if record is not None else None
    return IntersectionView(
        site=camera.site_id,
        camera=camera.id,
        layout=setup.intersection if setup else None,
        pcu=setup.pcu if setup else PcuFactors(),
    )


@dataclass(frozen=True, slots=True)
class MovementTable:
    """Movement and unmatched counts per class and bin, with the camera's coverage."""

    view: IntersectionView
    grid: Grid
    vehicle_class: VehicleClass | None
    """The class filter (None: every class)."""
    coverage: list[float]
    moves: Cells
    unmatched: Cells

    @property
    def classes(self) -> tuple[VehicleClass, ...]:
        return classes_of(self.vehicle_class)

    def pairs(self) -> list[tuple[str, str]]:
        """Every pair of layout legs (origin order, then destination), then pairs counted that
        the layout does not name (all counted pairs without a layout)."""
        layout = self.view.layout
        gates = [leg.gate for leg in layout.legs] if layout else []
        named = [(o, d) for o in gates for d in gates]
        seen = sorted(k for k, per in self.moves.items() if any(any(v) for v in per.values()))
        return named + [(o, d) for o, d in seen if (o, d) not in named]

    def counts(
        self, keys: Iterable[tuple[str, ...]], cells: Cells | None = None
    ) -> list[int | None]:
        """Vehicles per bin summed over `keys`, null where nothing was watched."""
        sums = [0] * len(self.grid)
        source = self.moves if cells is None else cells
        for key in keys:
            for values in source.get(key, {}).values():
                for i, n in enumerate(values):
                    sums[i] += n
        return [n if c > 0 else None for n, c in zip(sums, self.coverage, strict=True)]

    def by_class(
        self, keys: Iterable[tuple[str, ...]], bins: range | None = None
    ) -> dict[VehicleClass, int]:
        """Vehicles per class over covered bins (`bins`: only those)."""
        chosen = range(len(self.grid)) if bins is None else bins
        covered = [i for i in chosen if self.coverage[i] > 0]
        totals = dict.fromkeys(self.classes, 0)
        for key in keys:
            for vehicle_class, values in self.moves.get(key, {}).items():
                totals[vehicle_class] += sum(values[i] for i in covered)
        return totals

    def totals(self, keys: Sequence[tuple[str, ...]]) -> dict[str, Any]:
        """The MovementTotals fields of `keys` over the window."""
        if not any(self.coverage):
            return {"total": None, "pcu": None, "by_class": {}, "heavy": None, "heavy_share": None}
        per_class = self.by_class(keys)
        return {"total": sum(per_class.values()), "by_class": per_class} | self.mix(per_class)

    def mix(self, per_class: dict[VehicleClass, int]) -> dict[str, Any]:
        """PCU, heavy vehicles and their share of a count per class."""
        heavy = sum(n for c, n in per_class.items() if c in HEAVY_VEHICLE_CLASSES)
        return {
            "pcu": round(self.view.pcu.total(per_class), 2),
            "heavy": heavy,
            "heavy_share": share(heavy, sum(per_class.values())),
        }


def movement_table(
    session: Session,
    audience: Audience,
    camera_id: str,
    bin_name: Bin,
    span: TimeRange,
    tz: str | None,
    vehicle_class: VehicleClass | None,
) -> MovementTable:
    """The camera's movements over `span` in `bin_name` bins (404: not visible)."""
    scope = resolve_scope(session, audience, None, camera_id, None, tz)
    first, last = span.resolve(scope.tz, DEFAULT_SPAN, MAX_SPAN)
    grid = make_grid(bin_name, scope.tz, first, last)
    granularity = grid.source_granularity(ROLLUP_GRANULARITIES_S)
    classes = classes_of(vehicle_class)
    seconds = watched_movements(session, camera_id, grid, granularity)
    coverage = [
        min(t / (e - s), 1.0) for t, s, e in zip(seconds, grid.starts, grid.ends, strict=True)
    ]
    return MovementTable(
        view=camera_view(session, camera_id),
        grid=grid,
        vehicle_class=vehicle_class,
        coverage=coverage,
        moves=rollup_cells(
            session,
            MovementRollup,
            ("origin", "destination"),
            camera_id,
            grid,
            granularity,
            classes,
        ),
        unmatched=rollup_cells(
            session, UnmatchedRollup, ("gate",), camera_id, grid, granularity, classes
        ),
    )


def watched_movements(
    session: Session, camera_id: str, grid: Grid, granularity: int
) -> list[float]:
    """Seconds per bin in which the camera watched movements."""
    statement = select(
        MovementCoverageRollup.bucket_start_s, MovementCoverageRollup.covered_s
    ).where(*rollup_window(MovementCoverageRollup, granularity, [camera_id], grid.start, grid.end))
    seconds = [0.0] * len(grid)
    for bucket, covered in session.execute(statement):
        i = grid.index(int(bucket))
        if i is not None:
            seconds[i] += float(covered)
    return seconds


def classes_of(vehicle_class: VehicleClass | None) -> tuple[VehicleClass, ...]:
    """The classes a filter keeps (None: every class)."""
    return (vehicle_class,) if vehicle_class else VEHICLE_CLASSES


def rollup_cells(
    session: Session,
    model: Any,
    keys: Sequence[str],
    camera_id: str,
    grid: Grid,
    granularity: int,
    classes: Sequence[VehicleClass],
) -> Cells:
    """Per-class counts per key and bin from one rollup table."""
    statement = select(
        model.bucket_start_s,
        *(getattr(model, k) for k in keys),
        *(getattr(model, CLASS_COLUMNS[c]) for c in classes),
    ).where(*rollup_window(model, granularity, [camera_id], grid.start, grid.end))
    cells: Cells = {}
    for bucket, *values in session.execute(statement):
        i = grid.index(int(bucket))
        if i is None:
            continue
        key = tuple(str(v) for v in values[: len(keys)])
        per_class = cells.setdefault(key, {c: [0] * len(grid) for c in classes})
        for vehicle_class, n in zip(classes, values[len(keys) :], strict=True):
            per_class[vehicle_class][i] += int(n or 0)
    return cells


def tmc(table: MovementTable) -> TmcOut:
    """The table in its response shape."""
    grid, view = table.grid, table.view
    pairs = table.pairs()
    by_origin = approaches_of(pairs)
    return TmcOut(
        from_=grid.iso(grid.start),
        to=grid.iso(grid.end),
        site=view.site,
        camera=view.camera,
        timezone=grid.tz.key,
        bin=grid.bucket,
        vehicle_class=table.vehicle_class,
        layout=view.layout is not None,
        legs=view.legs(),
        pcu_factors=view.pcu.model_dump(),
        bins=[
            CoveredBucket(start=grid.iso(s), end=grid.iso(e), coverage=round(c, 4))
            for s, e, c in zip(grid.starts, grid.ends, table.coverage, strict=True)
        ],
        movements=[
            MovementSeries(
                origin=o,
                destination=d,
                movement=view.movement(o, d),
                counts=table.counts([(o, d)]),
                **table.totals([(o, d)]),
            )
            for o, d in pairs
        ],
        approaches=[
            ApproachSeries(origin=o, counts=table.counts(keys), **table.totals(keys))
            for o, keys in by_origin.items()
        ],
        intersection=IntersectionSeries(counts=table.counts(pairs), **table.totals(pairs)),
        unmatched=[unmatched_series(table, gate) for (gate,) in sorted(table.unmatched)],
    )


def approaches_of(pairs: list[tuple[str, str]]) -> dict[str, list[tuple[str, str]]]:
    """The movements of each approach (origin gate), in the order of `pairs`."""
    by_origin: dict[str, list[tuple[str, str]]] = {}
    for pair in pairs:
        by_origin.setdefault(pair[0], []).append(pair)
    return by_origin


def unmatched_series(table: MovementTable, gate: str) -> UnmatchedSeries:
    counts = table.counts([(gate,)], table.unmatched)
    total = sum(n or 0 for n in counts) if any(table.coverage) else None
    return UnmatchedSeries(gate=gate, counts=counts, total=total)


def peak_factor(
    table: MovementTable, keys: Sequence[tuple[str, ...]], bins: range
) -> dict[str, Any]:
    """Volume, busiest quarter, PHF, PCU and heavy share of `keys` over the peak `bins`."""
    counts = table.counts(keys)[bins.start : bins.stop]
    volume = sum(n or 0 for n in counts)
    busiest = max((n or 0 for n in counts), default=0)
    return {
        "volume": volume,
        "max_15min_volume": busiest,
        "phf": peak_hour_factor(volume, busiest),
    } | table.mix(table.by_class(keys, bins))


def peak(table: MovementTable) -> MovementPeakOut:
    """The busiest four consecutive covered 15-minute bins of the intersection, and the PHF
    of every movement and approach within them."""
    grid, view = table.grid, table.view
    pairs = table.pairs()
    total = table.counts(pairs)
    hour = peak_hour(CountSeries(grid, table.coverage, [Series({}, total, table.coverage)]))
    head = {
        "from_": grid.iso(grid.start),
        "to": grid.iso(grid.end),
        "site": view.site,
        "camera": view.camera,
        "timezone": grid.tz.key,
        "vehicle_class": table.vehicle_class,
        "peak_hour": hour,
    }
    if hour is None:
        return MovementPeakOut(
            **head, coverage=None, intersection=None, approaches=[], movements=[]
        )
    first = grid.starts.index(int(hour.start.timestamp()))
    bins = range(first, first + PEAK_WINDOW)
    return MovementPeakOut(
        **head,
        coverage=round(sum(table.coverage[i] for i in bins) / PEAK_WINDOW, 4),
        intersection=PeakFactor(**peak_factor(table, pairs, bins)),
        approaches=[
            ApproachPeak(origin=o, **peak_factor(table, keys, bins))
            for o, keys in approaches_of(pairs).items()
        ],
        movements=[
            MovementPeak(
                origin=o,
                destination=d,
                movement=view.movement(o, d),
                **peak_factor(table, [(o, d)], bins),
            )
            for o, d in pairs
        ],
    )


def tmc_csv(table: MovementTable) -> str:
    """The TMC table as long CSV: one row per bin and movement; a gap has an empty count."""
    grid, view = table.grid, table.view
    rows: list[Sequence[object]] = [TMC_CSV_COLUMNS]
    series = [(o, d, view.movement(o, d) or "", table.counts([(o, d)])) for o, d in table.pairs()]
    for i, (s, e) in enumerate(zip(grid.starts, grid.ends, strict=True)):
        for origin, destination, movement, counts in series:
            rows.append(
                (
                    grid.iso(s).isoformat(),
                    grid.iso(e).isoformat(),
                    round(table.coverage[i], 4),
                    origin,
                    destination,
                    movement,
                    "" if counts[i] is None else counts[i],
                )
            )
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def utdf_columns(view: IntersectionView) -> dict[tuple[str, str], str]:
    """(origin, destination) -> UTDF column (NBL ...), from the legs' compass points; refused
    (422) without a layout, or when two legs share a compass point."""
    if view.layout is None:
        raise RejectedError(
            f"camera {view.camera!r} has no intersection layout: a UTDF file needs each leg's"
            " bearing to name the N/E/S/W approaches"
        )
    points = {leg.gate: compass(leg.bearing_deg) for leg in view.layout.legs}
    crowded = sorted({p for p in points.values() if list(points.values()).count(p) > 1})
    if crowded:
        raise RejectedError(
            f"camera {view.camera!r}: more than one leg lies nearest to {', '.join(crowded)};"
            " a UTDF file has one approach per compass point"
        )
    columns = {}
    for origin, point in points.items():
        for destination in points:
            movement = view.layout.movement(origin, destination)
            if movement is not None:
                columns[(origin, destination)] = BOUND[point] + UTDF_TURNS[movement]
    return columns


def utdf_volume(table: MovementTable, intid: int) -> str:
    """Synchro UTDF `Volume.csv` (time-based volumes): two heading lines, then DATE, TIME
    (local start, hhmm), INTID and a column per approach and turn. Bins no report covers are
    left out (a missing row is no data; a row of zeros would claim an empty road)."""
    columns = utdf_columns(table.view)
    series = {pair: table.counts([pair]) for pair in columns}
    lines = ["Turning Movement Count", UTDF_HEADINGS[table.grid.bucket]]  # type: ignore[index]
    lines.append(",".join(["DATE", "TIME", "INTID", *UTDF_COLUMNS]))
    for i, start in enumerate(table.grid.starts):
        if table.coverage[i] == 0:
            continue
        values = dict.fromkeys(UTDF_COLUMNS, 0)
        for pair, column in columns.items():
            values[column] += series[pair][i] or 0
        local = table.grid.iso(start)
        lines.append(
            ",".join(
                [local.strftime("%m/%d/%Y"), local.strftime("%H%M"), str(intid)]
                + [str(values[c]) for c in UTDF_COLUMNS]
            )
        )
    return "\r\n".join(lines) + "\r\n"
