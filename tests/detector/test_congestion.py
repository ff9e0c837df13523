"""Congestion stage: synthetic trajectories (no images) through ZoneMeter and summarise_zone."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract import SPEED_BIN_EDGES_KMH, ZoneRow
from contract.camera import Calibration, Point, Zone
from contract.report import MAX_COUNT
from detector.congestion import (
    GroundCalibration,
    ZoneMeter,
    level_of_service,
    summarise_zone,
)
from detector.currency import FrameMeta, Tracks, ZoneSample

FRAME_W, FRAME_H = 1000, 500
SCALE = (float(FRAME_W), float(FRAME_H))
FPS = 15.0

# A 10 m wide, 100 m long road seen in perspective: far end narrow at the top of the frame.
ROAD_CALIBRATION = Calibration(
    image_points=((0.4, 0.2), (0.6, 0.2), (0.9, 1.0), (0.1, 1.0)),
    ground_points_m=((0.0, 100.0), (10.0, 100.0), (10.0, 0.0), (0.0, 0.0)),
)
ROAD_ZONE = Zone(name="road", polygon=[(0.4, 0.2), (0.6, 0.2), (0.9, 1.0), (0.1, 1.0)])
# Pixel square (200, 100)-(600, 500) of the frame.
SQUARE_ZONE = Zone(name="square", polygon=[(0.2, 0.2), (0.6, 0.2), (0.6, 1.0), (0.2, 1.0)])

Points = npt.NDArray[np.float64]
Box = tuple[int, float, float, float, float]
"""track id, x1, y1, x2, y2 in frame pixels."""


def tracks_at(time_s: float, boxes: Sequence[Box], index: int = 0) -> Tracks:
    """One frame's tracks, built directly from boxes."""
    return Tracks(
        meta=FrameMeta(index=index, timestamp_s=time_s, width=FRAME_W, height=FRAME_H),
        track_id=np.array([b[0] for b in boxes], dtype=np.int64),
        xyxy=np.array([b[1:] for b in boxes], dtype=np.float32).reshape(-1, 4),
        vehicle_class=tuple("car" for _ in boxes),
    )


def box_on(track_id: int, contact_px: npt.ArrayLike, size_px: float = 30.0) -> Box:
    """A box whose bottom-centre (ground contact point) is ``contact_px``."""
    x, y = np.asarray(contact_px, dtype=np.float64).tolist()
    return (track_id, x - size_px / 2, y - size_px, x + size_px / 2, y)


def road() -> GroundCalibration:
    return GroundCalibration.from_config(ROAD_CALIBRATION, SCALE)


def to_image(calibration: GroundCalibration, ground_m: npt.ArrayLike) -> Points:
    """Inverse of the calibration: where ground points appear in the frame."""
    ground = np.asarray(ground_m, dtype=np.float64)
    homogeneous = np.column_stack((ground, np.ones(len(ground))))
    projected = homogeneous @ np.linalg.inv(calibration.homography).T
    return projected[:, :2] / projected[:, 2:3]


def drive(
    meter: ZoneMeter, vehicles: Sequence[tuple[int, Points]], frames: int
) -> list[ZoneSample]:
    """Feed ``frames`` frames; each vehicle is (track id, contact point per frame in px)."""
    return [
        meter.observe(tracks_at(i / FPS, [box_on(tid, path[i]) for tid, path in vehicles], index=i))
        for i in range(frames)
    ]


def ground_path(speed_kmh: float, lane_x_m: float, start_m: float, frames: int) -> Points:
    """Ground positions of a vehicle driving up the road at a constant speed."""
    along = start_m + speed_kmh / 3.6 * np.arange(frames) / FPS
    return np.column_stack((np.full(frames, lane_x_m), along))


@pytest.mark.parametrize(
    ("image_point", "ground_point"),
    [((400, 100), (0, 100)), ((600, 100), (10, 100)), ((900, 500), (10, 0)), ((500, 300), None)],
)
def test_calibration_maps_image_points_to_ground(
    image_point: tuple[float, float], ground_point: tuple[float, float] | None
) -> None:
    ground = road().to_ground(np.array([image_point], dtype=np.float32))[0]
    if ground_point is None:  # mid-frame is on the road, nearer than half its length
        assert 0 < ground[0] < 10
        assert 0 < ground[1] < 50
    else:
        np.testing.assert_allclose(ground, ground_point, atol=1e-3)


def test_points_above_the_horizon_have_no_ground_position() -> None:
    # The road's edges meet at the horizon, y = -33.3 px: beyond it nothing is on the ground.
    ground = road().to_ground(np.array([[500, -100]], dtype=np.float32))
    assert np.isnan(ground).all()


@pytest.mark.parametrize(
    "image_points",
    [
        ((0.1, 0.1), (0.5, 0.5), (0.9, 0.9), (0.1, 0.9)),  # three on a diagonal
        ((0.1, 0.1), (0.1, 0.1), (0.9, 0.9), (0.1, 0.9)),  # a repeated point
    ],
)
def test_degenerate_calibration_is_a_clear_error(
    image_points: tuple[Point, Point, Point, Point],
) -> None:
    with pytest.raises(ValueError, match=r"degenerate|the same"):
        Calibration(image_points=image_points, ground_points_m=((0, 0), (1, 0), (1, 1), (0, 1)))


@pytest.mark.parametrize(
    ("zone", "message"),
    [
        (Zone(name="sky", polygon=[(0.4, 0.0), (0.6, 0.0), (0.6, 0.5), (0.4, 0.5)]), "horizon"),
    ],
)
def test_unusable_zone_is_a_clear_error(zone: Zone, message: str) -> None:
    # A steeper view of the road, with its horizon inside the frame at y = 0.31.
    steep = Calibration(
        image_points=((0.45, 0.4), (0.55, 0.4), (0.9, 1.0), (0.1, 1.0)),
        ground_points_m=ROAD_CALIBRATION.ground_points_m,
    )
    with pytest.raises(ValueError, match=message):
        ZoneMeter(zone, SCALE, GroundCalibration.from_config(steep, SCALE))


@pytest.mark.parametrize("speed_kmh", [8.0, 35.0, 55.0, 95.0, 135.0])  # off bin edges
@pytest.mark.parametrize("lane_x_m", [2.5, 7.5])
def test_calibrated_speed_matches_ground_truth(speed_kmh: float, lane_x_m: float) -> None:
    calibration = road()
    frames = int(FPS * 95 / (speed_kmh / 3.6))  # until about 95 m up the road
    frames = min(frames, int(FPS * 20))
    path = to_image(calibration, ground_path(speed_kmh, lane_x_m, 1.0, frames))
    meter = ZoneMeter(ROAD_ZONE, SCALE, calibration)
    row = summarise_zone(ROAD_ZONE, drive(meter, [(7, path)], frames), calibrated=True)

    assert row.mean_speed_kmh == pytest.approx(speed_kmh, rel=0.05)
    assert row.p85_speed_kmh == pytest.approx(speed_kmh, rel=0.05)
    assert row.speed_histogram is not None
    expected_bin = int(np.searchsorted(SPEED_BIN_EDGES_KMH, speed_kmh, side="right")) - 1
    assert row.speed_histogram[expected_bin] == sum(row.speed_histogram) > 0
    assert (row.stopped_share, row.queue_vehicles, row.queue_m) == (0, 0, 0)


def test_uncalibrated_camera_reports_no_speed() -> None:
    path = to_image(road(), ground_path(50.0, 2.5, 1.0, 60))
    meter = ZoneMeter(ROAD_ZONE, SCALE, None)
    row = summarise_zone(ROAD_ZONE, drive(meter, [(1, path)], 60), calibrated=False)

    assert (row.mean_speed_kmh, row.p85_speed_kmh, row.speed_histogram) == (None, None, None)
    assert row.queue_m is None
    assert (row.mean_vehicles, row.stopped_share) == (1, 0)


def test_calibrated_zone_without_measured_speed_reports_none() -> None:
    # Vehicles seen for under SPEED_SPAN_S give no speed: none is reported, not zero.
    path = to_image(road(), ground_path(50.0, 2.5, 1.0, 10))
    meter = ZoneMeter(ROAD_ZONE, SCALE, road())
    row = summarise_zone(ROAD_ZONE, drive(meter, [(1, path)], 10), calibrated=True)
    assert (row.mean_speed_kmh, row.p85_speed_kmh, row.speed_histogram) == (None, None, None)
    assert row.mean_vehicles == 1


QUEUE_GAP_M = 8.0


def queue_scene(
    calibration: GroundCalibration, frames: int, with_mover: bool
) -> list[tuple[int, Points]]:
    """Five vehicles standing 8 m apart in one lane (1 px box jitter), maybe one passing."""
    rng = np.random.default_rng(0)
    vehicles = []
    for k in range(5):
        standing = to_image(calibration, [[2.5, 10.0 + k * QUEUE_GAP_M]])
        vehicles.append((k, standing + rng.normal(0, 1.0, (frames, 2))))
    if with_mover:
        vehicles.append((99, to_image(calibration, ground_path(40.0, 7.5, 1.0, frames))))
    return vehicles


@pytest.mark.parametrize("calibrated", [True, False])
@pytest.mark.parametrize(("with_mover", "stopped_share"), [(False, 1.0), (True, 5 / 6)])
def test_queue_of_stopped_vehicles(
    calibrated: bool, with_mover: bool, stopped_share: float
) -> None:
    calibration = road()
    meter = ZoneMeter(ROAD_ZONE, SCALE, calibration if calibrated else None)
    samples = drive(meter, queue_scene(calibration, 60, with_mover), 60)
    settled = samples[int(FPS * 1.5) :]  # stops are known once SPEED_SPAN_S has passed
    row = summarise_zone(ROAD_ZONE, settled, calibrated=calibrated)

    assert row.stopped_share == pytest.approx(stopped_share)
    assert row.queue_vehicles == 5
    if calibrated:
        assert row.queue_m == pytest.approx(4 * QUEUE_GAP_M + 7.5, abs=1.0)
        assert row.speed_histogram is not None
        assert row.speed_histogram[0] >= 5 * len(settled)
    else:
        assert row.queue_m is None


@pytest.mark.parametrize(
    ("boxes", "area_share"),
    [
        ([], 0.0),
        ([(1, 200, 300, 400, 500)], 0.25),  # a quarter of the 400 x 400 px square
        ([(1, 200, 300, 400, 500), (2, 300, 300, 500, 500)], 0.375),  # overlap counts once
        ([(1, 100, 0, 700, 490)], 390 / 400),  # larger than the zone: clipped to it
        ([(1, 650, 100, 900, 500)], 0.0),  # contact point outside: not in this zone
        ([(1, 550, 300, 750, 450)], 0.0),  # overlaps, but stands outside the zone
    ],
)
def test_occupancy_area_on_known_layouts(boxes: list[Box], area_share: float) -> None:
    sample = ZoneMeter(SQUARE_ZONE, SCALE, None).observe(tracks_at(0.0, boxes))
    assert sample.area_share == pytest.approx(area_share, abs=0.02)
    assert (sample.vehicles > 0) == (area_share > 0)


@pytest.mark.parametrize(("present_in", "occupancy_time"), [(0, 0.0), (3, 0.3), (10, 1.0)])
def test_occupancy_time_is_share_of_frames_with_a_vehicle(
    present_in: int, occupancy_time: float
) -> None:
    meter = ZoneMeter(SQUARE_ZONE, SCALE, None)
    inside, outside = (1, 200, 300, 400, 500), (1, 700, 300, 800, 400)
    samples = [
        meter.observe(tracks_at(i / FPS, [inside if i < present_in else outside]))
        for i in range(10)
    ]
    row = summarise_zone(SQUARE_ZONE, samples, calibrated=False)
    assert row.occupancy_time == pytest.approx(occupancy_time)
    assert row.max_vehicles == (1 if present_in else 0)


@pytest.mark.parametrize(
    ("density", "los"),
    [
        (0.0, "A"),
        (7.0, "A"),
        (7.01, "B"),
        (11.0, "B"),
        (11.01, "C"),
        (16.0, "C"),
        (16.01, "D"),
        (22.0, "D"),
        (22.01, "E"),
        (28.0, "E"),
        (28.01, "F"),
        (150.0, "F"),
    ],
)
def test_level_of_service_boundaries(density: float, los: str) -> None:
    assert level_of_service(density) == los


def square_with_queue(vehicles: int) -> list[Box]:
    return [(k, 210 + 20 * k, 400, 225 + 20 * k, 450) for k in range(vehicles)]


@pytest.mark.parametrize(
    ("zone", "calibration", "vehicles", "density", "los"),
    [
        (SQUARE_ZONE.model_copy(update={"length_m": 200.0, "lanes": 2}), None, 4, 10.0, "B"),
        (SQUARE_ZONE.model_copy(update={"length_m": 50.0}), None, 1, 20.0, "D"),
        (SQUARE_ZONE.model_copy(update={"length_m": 0.001}), None, 5, 1000.0, "F"),  # capped
        (SQUARE_ZONE, None, 4, None, None),  # no length, no calibration: unknown
        (ROAD_ZONE, ROAD_CALIBRATION, 1, 10.0, "B"),  # length from the 100 m ground extent
        (ROAD_ZONE.model_copy(update={"length_m": 40.0}), ROAD_CALIBRATION, 1, 25.0, "E"),
    ],
)
def test_density_and_level_of_service(
    zone: Zone,
    calibration: Calibration | None,
    vehicles: int,
    density: float | None,
    los: str | None,
) -> None:
    ground = GroundCalibration.from_config(calibration, SCALE) if calibration else None
    meter = ZoneMeter(zone, SCALE, ground)
    samples = [meter.observe(tracks_at(i / FPS, square_with_queue(vehicles))) for i in range(5)]
    row = summarise_zone(zone, samples, calibrated=ground is not None)
    assert row.mean_vehicles == vehicles
    assert row.density_veh_km_lane == (
        None if density is None else pytest.approx(density, rel=1e-3)
    )
    assert row.los == los


def sample(speeds: Sequence[float], vehicles: int = 1) -> ZoneSample:
    return ZoneSample(
        zone="road",
        timestamp_s=0.0,
        vehicles=vehicles,
        area_share=0.1,
        speeds_kmh=tuple(speeds),
        stopped=0,
        queue_vehicles=0,
        queue_m=0.0,
        density_veh_km_lane=None,
    )


def test_speed_histogram_uses_contract_bins_with_open_last_bin() -> None:
    row = summarise_zone(
        ROAD_ZONE, [sample([0.0, 9.9, 10.0]), sample([55.0, 129.9, 130.0, 250.0])], True
    )
    expected = [0] * len(SPEED_BIN_EDGES_KMH)
    expected[0], expected[1], expected[5], expected[12], expected[13] = 2, 1, 1, 1, 2
    assert row.speed_histogram == expected
    assert row.mean_speed_kmh == pytest.approx(np.mean([0, 9.9, 10, 55, 129.9, 130, 250]), rel=1e-5)


def test_speed_histogram_keeps_its_shape_under_the_contract_cap() -> None:
    crowded = [sample([5.0] * 100, vehicles=100) for _ in range(1500)] + [sample([45.0] * 1500)]
    row = summarise_zone(ROAD_ZONE, crowded, calibrated=True)
    assert row.speed_histogram is not None
    assert row.speed_histogram[0] == MAX_COUNT
    assert row.speed_histogram[4] == pytest.approx(1500 * MAX_COUNT / 150_000, abs=1)


def test_interval_without_samples_is_an_error_not_an_empty_road() -> None:
    with pytest.raises(ValueError, match="no samples"):
        summarise_zone(ROAD_ZONE, [], calibrated=True)


def test_stream_time_going_back_does_not_make_up_a_speed() -> None:
    meter = ZoneMeter(ROAD_ZONE, SCALE, road())
    point = to_image(road(), [[5.0, 20.0]])[0]
    for i in range(30):
        meter.observe(tracks_at(100 + i / FPS, [box_on(1, point)]))
    restarted = meter.observe(tracks_at(0.0, [box_on(1, point + 50)]))
    assert restarted.speeds_kmh == ()


def test_history_stays_bounded_on_an_endless_stream() -> None:
    """10^5 frames of passing traffic and one parked car: memory does not grow."""
    meter = ZoneMeter(SQUARE_ZONE, SCALE, road())
    frames, lifetime, concurrent = 100_000, 45, 4
    xs = np.linspace(200, 600, lifetime)
    bound = (concurrent + 1) * (int(FPS * 1.0) + 2)  # tracks x positions per SPEED_SPAN_S
    for i in range(frames):
        passing = [
            box_on(i // lifetime * concurrent + lane + 1, (xs[i % lifetime], 200 + 80 * lane))
            for lane in range(concurrent)
        ]
        meter.observe(tracks_at(i / FPS, [box_on(0, (300, 480)), *passing], index=i))
        if i % 997 == 0:
            assert meter.remembered_positions <= bound
    assert meter.remembered_positions <= bound


box_strategy = st.tuples(
    st.integers(0, 6),
    st.floats(0, FRAME_W - 1),
    st.floats(0, FRAME_H - 1),
    st.floats(1, 400),
    st.floats(1, 300),
).map(lambda b: (b[0], b[1], b[2], b[1] + b[3], b[2] + b[4]))
frames_strategy = st.lists(
    st.tuples(st.floats(0.01, 2.0), st.lists(box_strategy, max_size=6, unique_by=lambda b: b[0])),
    min_size=1,
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(
    frames=frames_strategy, calibrated=st.booleans(), zone=st.sampled_from([ROAD_ZONE, SQUARE_ZONE])
)
def test_rows_are_always_valid_contract_rows(
    frames: list[tuple[float, list[Box]]], calibrated: bool, zone: Zone
) -> None:
    meter = ZoneMeter(zone, SCALE, road() if calibrated else None)
    times = np.cumsum([gap for gap, _ in frames])
    samples = [
        meter.observe(tracks_at(float(t), boxes))
        for t, (_, boxes) in zip(times, frames, strict=True)
    ]
    row = summarise_zone(zone, samples, calibrated=calibrated)

    assert ZoneRow.model_validate(row.model_dump()) == row
    assert 0 <= row.occupancy_area <= row.occupancy_time <= 1
    assert 0 <= row.stopped_share <= 1
    speed_fields = (row.mean_speed_kmh, row.p85_speed_kmh, row.speed_histogram)
    assert all(f is None for f in speed_fields) or all(f is not None for f in speed_fields)
    if not calibrated:
        assert all(f is None for f in speed_fields)
        assert row.queue_m is None
    assert row.queue_vehicles <= row.mean_vehicles <= row.max_vehicles
