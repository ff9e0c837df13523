"""Proposed count lines and zones, computed from a scene map alone.

Pure functions of the aggregate map (cells seen by at least ``k`` vehicles): the worker runs
them when it sends a map, and anything else holding the map gets the same answer. Steps:

1. Cells with a mean motion are grouped into *corridors*: cells near each other whose flow
   points the same way. Opposite or crossing flows never join.
2. Joined are also groups that carry one flow: lanes side by side, and stretches of one road
   that a quiet or hidden stretch separates. Two lines on one flow would count it twice.
3. Each corridor gets one count line across its flow (perpendicular to it; level or plumb
   when within ``SNAP_DEGREES`` of that) through the cross-section that is best observed,
   about halfway along the corridor, nearer the camera, away from the frame's edges. A
   corridor that runs along the frame's edge (partly out of view) gets none.
4. The line reaches sideways over every point nearer its own corridor than any other flow,
   up to the frame's edge: a lane too quiet to show in the map is still counted, and two
   lines never reach into each other's flow, so no vehicle is counted on two of them.
5. The line is named after its flow (``towards``/``away`` for flow down/up the image, as
   seen from a camera looking along a road; ``rightward``/``leftward`` across it), and so
   are its two crossing directions.
6. A zone covers the corridor's observed width upstream of the line: its approach.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree
from shapely.geometry import MultiPoint, Polygon

from contract import GeometricDirection
from contract.camera import CountLine
from contract.geometry import polygon_problem
from contract.scene import MAX_PROPOSALS, Proposals, ProposedLine, ProposedZone, SceneMap
from detector.count import PixelLine

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

NEIGHBOUR_CELLS = 3.0
"""Cells this close (in cell widths) may join one corridor: bridges the gaps that withheld
cells leave along a lane."""
SAME_FLOW_COS = math.cos(math.radians(35))
"""Neighbouring cells whose flow differs by less than this angle join one corridor."""
STOPPED_SHARE = 0.5
"""A cell with no clear flow that is stopped this often holds parked or queued vehicles:
it bounds lines as another flow does."""
PARALLEL_COS = math.cos(math.radians(20))
"""Groups of cells whose mean flows differ by less than this may carry one flow."""
LANE_GAP_CELLS = 6.0
"""Parallel groups at most this far apart, side by side, are lanes of one carriageway."""
SERIES_COS = math.cos(math.radians(30))
SERIES_MAX_CELLS = 30.0
"""A group that starts this close ahead of another, within 30 degrees of both their flows,
continues it."""
ALONG_EDGE_SHARE = 0.2
"""A corridor with this share of its cells running along the frame's edge is partly out of
view: no line is proposed on it."""
MIN_CORRIDOR_CELLS = 6
MIN_CORRIDOR_LENGTH_CELLS = 4.0
LOCAL_RADIUS_CELLS = 3.0
"""The flow at a point is first taken as the mean over the corridor's cells this close."""
EDGE_CELLS = 1.5
"""A cross-section whose corridor cells come this close to the frame's edge is cut by it."""
MAX_CANDIDATES = 48
"""Cross-sections tried per corridor, spread along its middle part."""
MIDDLE = (0.15, 0.85)
"""Share of a corridor's length (along its flow) where lines may be anchored."""
SNAP_DEGREES = 30.0
STEP_CELLS = 0.25
ZONE_LENGTH_CELLS = 12.0
MAX_LANES = 12
FLOW_NAMES: dict[GeometricDirection, str] = {
    "down": "towards",
    "up": "away",
    "right": "rightward",
    "left": "leftward",
}
OPPOSITE: dict[GeometricDirection, GeometricDirection] = {
    "down": "up",
    "up": "down",
    "right": "left",
    "left": "right",
}


@dataclass(frozen=True, slots=True)
class _Field:
    """The map's cells as arrays: centres in pixels, vehicles, unit flow, speed, stops."""

    width: float
    height: float
    cell_px: float
    centres: FloatArray
    vehicles: FloatArray
    flow: FloatArray
    speed: FloatArray
    stopped: FloatArray

    @classmethod
    def of(cls, scene_map: SceneMap) -> _Field:
        cell_w, cell_h = scene_map.cell_size()
        cells = scene_map.cells
        velocity = np.array([(c.vx, c.vy) for c in cells], np.float64).reshape(-1, 2)
        speed = np.hypot(velocity[:, 0], velocity[:, 1])
        centres = [((c.c + 0.5) * cell_w, (c.r + 0.5) * cell_h) for c in cells]
        return cls(
            width=float(scene_map.frame_width),
            height=float(scene_map.frame_height),
            cell_px=math.sqrt(cell_w * cell_h),
            centres=np.array(centres, np.float64).reshape(-1, 2),
            vehicles=np.array([c.n for c in cells], np.float64),
            flow=np.divide(
                velocity, speed[:, None], out=np.zeros_like(velocity), where=speed[:, None] > 0
            ),
            speed=speed,
            stopped=np.array([c.s for c in cells], np.float64),
        )

    @property
    def moving(self) -> npt.NDArray[np.bool_]:
        """Cells with a mean flow direction."""
        return self.speed > 0

    def inside(self, point: FloatArray, margin: float = 0.0) -> bool:
        x, y = float(point[0]), float(point[1])
        return margin <= x <= self.width - margin and margin <= y <= self.height - margin

    def clip(self, point: FloatArray) -> FloatArray:
        return np.clip(point, 0.0, (self.width, self.height))


@dataclass(frozen=True, slots=True)
class _Placement:
    """One corridor's line: its ends, the flow it counts and how well that was observed."""

    start: FloatArray
    end: FloatArray
    anchor: FloatArray
    flow: FloatArray
    across: FloatArray
    observed: tuple[float, float]
    """The stretch of the line that crosses observed cells, as offsets from the anchor."""
    vehicles: int
    along: float
    """Share of the corridor upstream of the line (0 = where its flow enters the view)."""
    lanes: int
    score: float

    def confidence(self, k: int) -> float:
        """Grows with the vehicles seen (in units of k) and the observed share of the line."""
        length = float(np.hypot(*(self.end - self.start)))
        observed = (self.observed[1] - self.observed[0]) / length if length else 0.0
        seen = 1 - math.exp(-self.vehicles / (4 * k))
        return round(seen * (0.5 + 0.5 * min(observed, 1.0)), 2)


def propose(scene_map: SceneMap) -> Proposals:
    """One line and one approach zone per corridor, the best observed first."""
    field = _Field.of(scene_map)
    bounding = np.flatnonzero(field.moving | (field.stopped >= STOPPED_SHARE))
    placements = []
    for corridor in _corridors(field):
        placement = _place(field, corridor, np.setdiff1d(bounding, corridor))
        if placement is not None:
            placements.append((placement, corridor))
    placements.sort(key=lambda pair: -pair[0].score)
    lines: list[ProposedLine] = []
    zones: list[ProposedZone] = []
    for placement, corridor in placements[:MAX_PROPOSALS]:
        line = _line(placement, [line.name for line in lines], scene_map.k)
        lines.append(line)
        zone = _zone(field, corridor, placement, line)
        if zone is not None:
            zones.append(zone)
    return Proposals(lines=lines, zones=zones)


def _corridors(field: _Field) -> list[IntArray]:
    """Connected groups of moving cells whose flow points the same way, long enough to count."""
    moving = np.flatnonzero(field.moving)
    if len(moving) == 0:
        return []
    tree = cKDTree(field.centres[moving] / field.cell_px)
    pairs = tree.query_pairs(NEIGHBOUR_CELLS, output_type="ndarray")
    flow = field.flow[moving]
    pairs = pairs[np.einsum("ij,ij->i", flow[pairs[:, 0]], flow[pairs[:, 1]]) >= SAME_FLOW_COS]
    graph = coo_matrix(
        (np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(moving), len(moving))
    )
    count, labels = connected_components(graph, directed=False)
    groups = _join_parallel(field, [moving[labels == label] for label in range(count)])
    return [
        group
        for group in groups
        if len(group) >= MIN_CORRIDOR_CELLS
        and np.ptp(field.centres[group] @ _mean_flow(field, group)) / field.cell_px
        >= MIN_CORRIDOR_LENGTH_CELLS
        and np.mean(_along_edge(field, group)) < ALONG_EDGE_SHARE
    ]


def _along_edge(field: _Field, cells: IntArray) -> npt.NDArray[np.bool_]:
    """Cells in the frame's outermost row or column whose flow runs along that edge: there
    the road goes on beyond the frame, and its vehicles are only partly in view."""
    x, y = field.centres[cells].T
    flow_x, flow_y = np.abs(field.flow[cells]).T
    near_side = (np.minimum(x, field.width - x) < field.cell_px) & (flow_y > flow_x)
    near_top_bottom = (np.minimum(y, field.height - y) < field.cell_px) & (flow_x > flow_y)
    along: npt.NDArray[np.bool_] = near_side | near_top_bottom
    return along


def _join_parallel(field: _Field, groups: list[IntArray]) -> list[IntArray]:
    """Join groups that carry one flow: side by side (lanes of one carriageway) or one after
    the other (a lane broken by an occlusion). Two lines on one flow would count its
    vehicles twice."""
    flows = [_mean_flow(field, g) for g in groups]
    joined = np.zeros((len(groups), len(groups)), bool)
    for i, j in itertools.combinations(range(len(groups)), 2):
        a, b = groups[i], groups[j]
        parallel = flows[i] @ flows[j] >= PARALLEL_COS
        joined[i, j] = (parallel and _side_by_side(field, a, b, flows[i] + flows[j])) or (
            _in_series(field, a, b) or _in_series(field, b, a)
        )
    count, labels = connected_components(joined, directed=False)
    return [
        np.concatenate([g for g, label in zip(groups, labels, strict=True) if label == flow])
        for flow in range(count)
    ]


def _side_by_side(field: _Field, a: IntArray, b: IntArray, direction: FloatArray) -> bool:
    """Overlapping along ``direction``, at most ``LANE_GAP_CELLS`` apart across it."""
    direction = direction / np.hypot(*direction)
    frame = np.column_stack((direction, _perpendicular(direction))) / field.cell_px
    a_at, b_at = field.centres[a] @ frame, field.centres[b] @ frame
    gap_along = max(b_at[:, 0].min() - a_at[:, 0].max(), a_at[:, 0].min() - b_at[:, 0].max())
    gap_across = max(b_at[:, 1].min() - a_at[:, 1].max(), a_at[:, 1].min() - b_at[:, 1].max())
    return bool(gap_along < 0 and gap_across <= LANE_GAP_CELLS)


def _in_series(field: _Field, a: IntArray, b: IntArray) -> bool:
    """Whether ``b`` starts ahead of some of ``a``'s cells, within 30 degrees of the flow there
    and at ``b``'s start and ``SERIES_MAX_CELLS`` away: one road whose stretch in between was
    too quiet (or hidden) to show."""
    start, flow = _start(field, b)
    gaps = start - field.centres[a]
    distances = np.hypot(gaps[:, 0], gaps[:, 1])
    ahead = (
        (field.flow[a] @ flow >= SERIES_COS)
        & (gaps @ flow >= SERIES_COS * distances)
        & (np.einsum("ij,ij->i", gaps, field.flow[a]) >= SERIES_COS * distances)
        & (distances <= SERIES_MAX_CELLS * field.cell_px)
    )
    return bool(ahead.any())


def _start(field: _Field, cells: IntArray) -> tuple[FloatArray, FloatArray]:
    """Where a group's flow enters it, and the flow there."""
    along = field.centres[cells] @ _mean_flow(field, cells)
    first = cells[along - along.min() <= LOCAL_RADIUS_CELLS * field.cell_px]
    centre: FloatArray = field.centres[first].mean(axis=0)
    return centre, _mean_flow(field, first)


def _mean_flow(field: _Field, cells: IntArray, normal: FloatArray | None = None) -> FloatArray:
    """Vehicle-weighted mean flow direction. Through a line with this ``normal`` each cell
    also weighs by how squarely its flow crosses: a lane that meets the line at a slant
    covers more cells along it, and must not tilt the line further."""
    weights = field.vehicles[cells]
    if normal is not None:
        weights = weights * np.clip(field.flow[cells] @ normal, 0, 1)
    total = (field.flow[cells] * weights[:, None]).sum(axis=0)
    norm = float(np.hypot(*total))
    return total / norm if norm > 0 else np.array([1.0, 0.0])


def _perpendicular(direction: FloatArray) -> FloatArray:
    return np.array([-direction[1], direction[0]])


def _place(field: _Field, corridor: IntArray, others: IntArray) -> _Placement | None:
    """The best of the corridor's full cross-sections along its middle part."""
    own = cKDTree(field.centres[corridor])
    foreign = cKDTree(field.centres[others]) if len(others) else None
    candidates = [
        placement
        for anchor in _anchors(field, corridor)
        if (placement := _cross_section(field, corridor, own, foreign, anchor)) is not None
    ]
    return max(candidates, key=lambda p: p.score, default=None)


def _anchors(field: _Field, corridor: IntArray) -> list[FloatArray]:
    """Cells in the middle part of the corridor (along its flow), clear of the frame's edges."""
    along = field.centres[corridor] @ _mean_flow(field, corridor)
    low, high = np.quantile(along, MIDDLE)
    middle = corridor[(along >= low) & (along <= high)]
    centres = [c for c in field.centres[middle] if field.inside(c, 2 * field.cell_px)]
    step = max(1, math.ceil(len(centres) / MAX_CANDIDATES))
    return centres[::step]


def _cross_section(
    field: _Field, corridor: IntArray, own: cKDTree, foreign: cKDTree | None, anchor: FloatArray
) -> _Placement | None:
    """The line through ``anchor`` across the flow it crosses, or None where the corridor is
    cut by the frame's edge there."""
    near = corridor[
        np.hypot(*(field.centres[corridor] - anchor).T) <= LOCAL_RADIUS_CELLS * field.cell_px
    ]
    flow = _mean_flow(field, near)
    _, _, band = _line_through(field, corridor, own, foreign, anchor, flow)
    flow = _mean_flow(field, band, flow)  # the flow through the whole line, not only near anchor
    start, end, band = _line_through(field, corridor, own, foreign, anchor, flow)
    across = _level(_perpendicular(flow))
    lateral = (field.centres[band] - anchor) @ across
    low, high = float(lateral.min()), float(lateral.max())
    edge = EDGE_CELLS * field.cell_px
    if not (
        field.inside(anchor + low * across, edge) and field.inside(anchor + high * across, edge)
    ):
        return None
    upstream = float(np.mean((field.centres[corridor] - anchor) @ flow < 0))
    crossing = float((field.vehicles[band] * np.clip(field.flow[band] @ flow, 0, 1)).sum())
    speed = float(np.median(field.speed[band]))
    return _Placement(
        start=start,
        end=end,
        anchor=anchor,
        flow=flow,
        across=across,
        observed=(low, high),
        vehicles=int(field.vehicles[band].max()),
        along=upstream,
        lanes=_lanes(np.sort(lateral), field.cell_px),
        score=_score(crossing, speed, upstream),
    )


def _line_through(
    field: _Field,
    corridor: IntArray,
    own: cKDTree,
    foreign: cKDTree | None,
    anchor: FloatArray,
    flow: FloatArray,
) -> tuple[FloatArray, FloatArray, IntArray]:
    """The ends of the line through ``anchor`` across ``flow``, and the corridor's cells on it."""
    across = _level(_perpendicular(flow))
    start = _reach(field, own, foreign, anchor, -across)
    end = _reach(field, own, foreign, anchor, across)
    on_line = _distance_to_segment(field.centres[corridor], start, end) <= field.cell_px
    return start, end, corridor[on_line]


def _score(crossing: float, speed: float, upstream: float) -> float:
    """Well observed (vehicles crossing), near the camera, where vehicles look largest and are
    detected best (their speed in pixels grows as their size does), and well inside the
    corridor, where tracks have begun before the line and go on after it."""
    return crossing * speed * min(upstream, 1 - upstream)


def _level(direction: FloatArray) -> FloatArray:
    """A line within ``SNAP_DEGREES`` of horizontal or vertical is made so. Across a road
    seen along its length, a horizontal line meets every lane at the same distance from the
    camera (lanes too quiet to show in the map included); across a road seen from the side,
    a vertical one is square to the traffic."""
    angle = math.degrees(math.atan2(abs(direction[1]), abs(direction[0])))
    if angle <= SNAP_DEGREES:
        return np.array([1.0, 0.0])
    if angle >= 90 - SNAP_DEGREES:
        return np.array([0.0, 1.0])
    return direction


def _distance_to_segment(points: FloatArray, start: FloatArray, end: FloatArray) -> FloatArray:
    segment = end - start
    length2 = float(segment @ segment)
    t = np.clip((points - start) @ segment / length2, 0, 1) if length2 else np.zeros(len(points))
    distance: FloatArray = np.linalg.norm(points - (start + t[:, None] * segment), axis=1)
    return distance


def _lanes(lateral: FloatArray, cell_px: float) -> int:
    """Bands of flow across a section: cells more than two cells apart are other lanes."""
    if len(lateral) == 0:
        return 1
    return min(MAX_LANES, 1 + int(np.count_nonzero(np.diff(lateral) > 2 * cell_px)))


def _reach(
    field: _Field, own: cKDTree, foreign: cKDTree | None, anchor: FloatArray, direction: FloatArray
) -> FloatArray:
    """How far a line from ``anchor`` runs in ``direction``: while its points are nearer this
    corridor than any other flow, and inside the frame."""
    step = STEP_CELLS * field.cell_px
    count = int(math.hypot(field.width, field.height) / step) + 2
    points = anchor + np.arange(count)[:, None] * step * direction
    ok = np.all((points >= 0) & (points <= (field.width, field.height)), axis=1)
    if foreign is not None:
        ok &= own.query(points)[0] <= foreign.query(points)[0]
    last = len(ok) - 1 if ok.all() else max(int(np.argmin(ok)) - 1, 0)
    return field.clip(points[last])


def _line(placement: _Placement, taken: list[str], k: int) -> ProposedLine:
    """The line, named with its crossing directions after the flow it counts."""
    points = (tuple(placement.start.tolist()), tuple(placement.end.tolist()))
    geometric = PixelLine.from_config(CountLine(name="probe", points=points), (1.0, 1.0))
    ahead = np.array([placement.anchor + placement.flow], np.float32)
    downstream = (
        geometric.positive_label if geometric.side(ahead)[0] >= 0 else geometric.negative_label
    )
    flow_direction: GeometricDirection = downstream  # type: ignore[assignment]
    name = _unique(FLOW_NAMES[flow_direction], taken)
    return ProposedLine(
        name=name,
        points=[[round(x, 1), round(y, 1)] for x, y in points],
        direction_names={
            flow_direction: FLOW_NAMES[flow_direction],
            OPPOSITE[flow_direction]: FLOW_NAMES[OPPOSITE[flow_direction]],
        },
        confidence=placement.confidence(k),
        reason=(
            f"across the '{FLOW_NAMES[flow_direction]}' flow, seen by at least "
            f"{placement.vehicles} vehicles, {round(100 * placement.along)}% along it; reaching "
            "to the frame's edge or halfway to the next flow"
        ),
    )


def _unique(base: str, taken: list[str]) -> str:
    name, number = base, 1
    while name in taken:
        number += 1
        name = f"{base}-{number}"
    return name


def _zone(
    field: _Field, corridor: IntArray, placement: _Placement, line: ProposedLine
) -> ProposedZone | None:
    """The corridor's observed width from the line back upstream: its approach."""
    flow, across, anchor = placement.flow, placement.across, placement.anchor
    offsets = field.centres[corridor] - anchor
    upstream = -(offsets @ flow)
    length = min(ZONE_LENGTH_CELLS * field.cell_px, float(upstream.max(initial=0.0)))
    if length < 2 * field.cell_px:
        return None
    far = np.abs(upstream - length) <= field.cell_px
    far_lateral = offsets[far] @ across
    low, high = placement.observed
    far_low, far_high = (
        (float(far_lateral.min()), float(far_lateral.max())) if far.any() else (low, high)
    )
    half, back = field.cell_px / 2, anchor - length * flow
    corners = [
        anchor + (low - half) * across,
        anchor + (high + half) * across,
        back + (far_high + half) * across,
        back + (far_low - half) * across,
    ]
    polygon = [(float(x), float(y)) for x, y in (field.clip(c) for c in corners)]
    if polygon_problem(polygon):
        hull = MultiPoint(polygon).convex_hull
        if not isinstance(hull, Polygon):
            return None
        polygon = [(float(x), float(y)) for x, y in hull.exterior.coords[:-1]]
    return ProposedZone(
        name=f"{line.name}-approach",
        polygon=[[round(x, 1), round(y, 1)] for x, y in polygon],
        lanes=placement.lanes,
        confidence=line.confidence,
        reason=(
            f"approach of the '{line.name}' flow: its observed width over "
            f"{round(length / field.cell_px)} cells upstream of the line, "
            f"{placement.lanes} band(s) of flow across it"
        ),
    )
