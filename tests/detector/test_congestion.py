"""Congestion stage: synthetic trajectories (no images) through ZoneMeter and summarise_zone."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract import SPEED_BIN_EDGES_KMH, VehicleClass, ZoneRow
from contract.camera import Calibration, Point, Zone
from contract.planning import PcuFactors
from contract.report import MAX_COUNT
from contract.site import ModelSettings
from detector.congestion import (
    MAX_PLAUSIBLE_SPEED_KMH,
    STALE_TRACK_S,
    GroundCalibration,
    ZoneMeter,
    level_of_service,
    summarise_zone,
)
from detector.currency import FrameMeta, Tracks, ZoneSample
from detector.detect import VehicleDetector
from tests.conftest import MODEL, VIDEO
from tests.support.replay import count, load_clip

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


def tracks_at(
    time_s: float,
    boxes: Sequence[Box],
    index: int = 0,
    classes: Sequence[VehicleClass] | None = None,
) -> Tracks:
    """One frame's tracks, built directly from boxes (cars unless ``classes`` says)."""
    return Tracks(
        meta=FrameMeta(index=index, timestamp_s=time_s, width=FRAME_W, height=FRAME_H),
        track_id=np.array([b[0] for b in boxes], dtype=np.int64),
        xyxy=np.array([b[1:] for b in boxes], dtype=np.float32).reshape(-1, 4),
        vehicle_class=tuple(classes or ["car"] * len(boxes)),
    )


def meter_of(
    zone: Zone, calibration: GroundCalibration | None, pcu: PcuFactors | None = None
) -> ZoneMeter:
    return ZoneMeter(zone, SCALE, calibration, pcu or PcuFactors())


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
        meter_of(zone, GroundCalibration.from_config(steep, SCALE))


def through_the_road(speed_kmh: float, lane_x_m: float = 2.5, start_m: float = 1.0) -> Points:
    """Image path of a vehicle driving up the road from ``start_m`` until 5 m past its end."""
    frames = int(FPS * (105 - start_m) / (speed_kmh / 3.6)) + 1
    return to_image(road(), ground_path(speed_kmh, lane_x_m, start_m, frames))


def passage_m_and_s(speed_kmh: float, start_m: float = 1.0) -> tuple[float, float]:
    """Hand computation: the first and last frame inside the 100 m road zone."""
    step_m = speed_kmh / 3.6 / FPS
    last = int((100 - start_m) / step_m)  # frames after the first still inside
    return last * step_m, last / FPS


@pytest.mark.parametrize("speed_kmh", [8.0, 35.0, 55.0, 95.0, 135.0])  # off bin edges
@pytest.mark.parametrize("lane_x_m", [2.5, 7.5])
def test_calibrated_speed_matches_ground_truth(speed_kmh: float, lane_x_m: float) -> None:
    path = through_the_road(speed_kmh, lane_x_m)
    meter = meter_of(ROAD_ZONE, road())
    samples = drive(meter, [(7, path)], len(path))
    row = summarise_zone(ROAD_ZONE, samples, calibrated=True)

    distance_m, time_s = passage_m_and_s(speed_kmh)
    assert distance_m / time_s * 3.6 == pytest.approx(speed_kmh)
    assert row.mean_speed_kmh == pytest.approx(speed_kmh, rel=1e-3)
    assert row.p85_speed_kmh == pytest.approx(speed_kmh, rel=1e-3)
    expected = [0] * len(SPEED_BIN_EDGES_KMH)
    expected[int(np.searchsorted(SPEED_BIN_EDGES_KMH, speed_kmh, side="right")) - 1] = 1
    assert row.speed_histogram == expected  # one vehicle, one count
    (leaving,) = [i for i, s in enumerate(samples) if s.speeds_kmh]
    assert samples[leaving - 1].vehicles == 1
    assert samples[leaving].vehicles == 0  # taken in the frame it is first seen outside
    assert (row.stopped_share, row.queue_vehicles, row.queue_m) == (0, 0, 0)


def test_speeds_are_over_vehicles_not_frames() -> None:
    """A 15 km/h and an 85 km/h vehicle: the slow one spends 85/15 times as many frames in
    the zone. Over frames the mean would be 2 / (1/15 + 1/85) = 25.5 km/h and v85 15 km/h
    (85 % of the frames see the slow one); over vehicles the mean is 50 and v85 85 km/h
    (the speed 85 % of the vehicles do not exceed: the second of two)."""
    slow, fast = through_the_road(15.0), through_the_road(85.0)
    frames = len(slow)
    fast = np.concatenate((fast, np.repeat(fast[-1:], frames - len(fast), axis=0)))
    samples = drive(meter_of(ROAD_ZONE, road()), [(1, slow), (2, fast)], frames)
    row = summarise_zone(ROAD_ZONE, samples, calibrated=True)

    frames_inside = [passage_m_and_s(v)[1] * FPS + 1 for v in (15.0, 85.0)]
    frame_mean = np.average([15.0, 85.0], weights=frames_inside)
    assert sum(s.vehicles for s in samples) == sum(frames_inside)
    frame_speeds = np.repeat([15.0, 85.0], np.array(frames_inside, dtype=int))
    assert frame_mean == pytest.approx(25.5, abs=0.3)
    assert np.percentile(frame_speeds, 85, method="inverted_cdf") == 15.0
    assert row.mean_speed_kmh == pytest.approx(50.0, rel=1e-3)
    assert row.p85_speed_kmh == pytest.approx(85.0, rel=1e-3)
    assert row.speed_histogram is not None
    assert (row.speed_histogram[1], row.speed_histogram[8], sum(row.speed_histogram)) == (1, 1, 2)


def test_a_vehicle_belongs_to_the_interval_it_leaves_in() -> None:
    """Two intervals split where the vehicle is half way: it counts in the second only."""
    path = through_the_road(50.0)
    samples = drive(meter_of(ROAD_ZONE, road()), [(1, path)], len(path))
    half = len(samples) // 2
    first = summarise_zone(ROAD_ZONE, samples[:half], calibrated=True)
    second = summarise_zone(ROAD_ZONE, samples[half:], calibrated=True)
    assert first.speed_histogram is None
    assert second.mean_speed_kmh == pytest.approx(50.0, rel=1e-3)


def test_a_track_that_ends_in_the_zone_is_measured_when_given_up() -> None:
    """Driving 60 km/h from 1 m to 51 m, then the track ends: 50 m in 3 s, taken once the
    track has been unseen for STALE_TRACK_S."""
    path = to_image(road(), ground_path(60.0, 2.5, 1.0, 46))  # 45 frames of 1.11 m
    meter = meter_of(ROAD_ZONE, road())
    driven = drive(meter, [(1, path)], len(path))
    after = [meter.observe(tracks_at(3.0 + i / FPS, [])) for i in range(1, int(FPS * 3))]
    (given_up,) = [s for s in after if s.speeds_kmh]
    assert not any(s.speeds_kmh for s in driven)
    assert given_up.timestamp_s == pytest.approx(3.0 + STALE_TRACK_S, abs=1.5 / FPS)
    assert given_up.speeds_kmh == pytest.approx((60.0,), rel=1e-3)


def test_a_broken_track_gives_each_part_its_own_speed() -> None:
    """An id switch half way: both halves are long enough, both are measured right (the
    vehicle then counts twice, which only a better tracker can avoid)."""
    path = through_the_road(40.0)
    half = len(path) // 2
    meter = meter_of(ROAD_ZONE, road())
    samples = [
        meter.observe(tracks_at(i / FPS, [box_on(1 if i < half else 2, path[i])]))
        for i in range(len(path))
    ]
    samples += [meter.observe(tracks_at(len(path) / FPS + 2.5, []))]
    row = summarise_zone(ROAD_ZONE, samples, calibrated=True)
    assert row.speed_histogram is not None
    assert sum(row.speed_histogram) == 2
    assert row.mean_speed_kmh == pytest.approx(40.0, rel=1e-3)


@pytest.mark.parametrize(
    ("name", "ground_m", "speeds"),
    [
        # Parked in the zone for 10 s with half a metre of jitter: never a speed.
        ("parked", [(2.5 + 0.5 * (i % 2), 50.0) for i in range(150)] + [(2.5, 120.0)], []),
        # Clipping the zone's end for a frame or two: shorter than MIN_PASSAGE_M.
        ("clipping", [(2.5, 98.0 + i) for i in range(6)], []),
        # Wobbling over the edge on the way out: measured once, over the whole passage.
        (
            "wobbling",
            [(2.5, 1.0 + i) for i in range(99)] + [(2.5, 101.0), (2.5, 99.5)] * 3,
            [FPS * 3.6],
        ),  # 1 m per frame
        # An id jumping 54 m in 0.6 s (324 km/h): a glitch, dropped.
        ("glitch", [(2.5, 10.0 + 6.0 * i) for i in range(10)] + [(2.5, 120.0)], []),
    ],
)
def test_passages_too_short_or_implausible_give_no_speed(
    name: str, ground_m: list[tuple[float, float]], speeds: list[float]
) -> None:
    path = to_image(road(), ground_m)
    meter = meter_of(ROAD_ZONE, road())
    samples = drive(meter, [(1, path)], len(path))
    samples += [meter.observe(tracks_at(len(path) / FPS + STALE_TRACK_S + 0.5, []))]
    measured = [v for s in samples for v in s.speeds_kmh]
    assert measured == pytest.approx(speeds, rel=1e-3), name
    assert all(v <= MAX_PLAUSIBLE_SPEED_KMH for v in measured)
    assert meter.remembered_positions == 0  # forgotten with the track


def test_uncalibrated_camera_reports_no_speed() -> None:
    path = to_image(road(), ground_path(50.0, 2.5, 1.0, 60))
    meter = meter_of(ROAD_ZONE, None)
    row = summarise_zone(ROAD_ZONE, drive(meter, [(1, path)], 60), calibrated=False)

    assert (row.mean_speed_kmh, row.p85_speed_kmh, row.speed_histogram) == (None, None, None)
    assert row.queue_m is None
    assert (row.mean_vehicles, row.stopped_share) == (1, 0)


def test_calibrated_zone_without_measured_speed_reports_none() -> None:
    # Vehicles seen for under SPEED_SPAN_S give no speed: none is reported, not zero.
    path = to_image(road(), ground_path(50.0, 2.5, 1.0, 10))
    meter = meter_of(ROAD_ZONE, road())
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
    meter = meter_of(ROAD_ZONE, calibration if calibrated else None)
    samples = drive(meter, queue_scene(calibration, 60, with_mover), 60)
    settled = samples[int(FPS * 1.5) :]  # stops are known once SPEED_SPAN_S has passed
    row = summarise_zone(ROAD_ZONE, settled, calibrated=calibrated)

    assert row.stopped_share == pytest.approx(stopped_share)
    assert row.queue_vehicles == 5
    if calibrated:
        assert row.queue_m == pytest.approx(4 * QUEUE_GAP_M + 7.5, abs=1.0)
    if calibrated:
        assert row.speed_histogram is None  # standing vehicles have no passage speed
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
    sample = meter_of(SQUARE_ZONE, None).observe(tracks_at(0.0, boxes))
    assert sample.area_share == pytest.approx(area_share, abs=0.02)
    assert (sample.vehicles > 0) == (area_share > 0)


@pytest.mark.parametrize(("present_in", "occupancy_time"), [(0, 0.0), (3, 0.3), (10, 1.0)])
def test_occupancy_time_is_share_of_frames_with_a_vehicle(
    present_in: int, occupancy_time: float
) -> None:
    meter = meter_of(SQUARE_ZONE, None)
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
    meter = meter_of(zone, ground)
    samples = [meter.observe(tracks_at(i / FPS, square_with_queue(vehicles))) for i in range(5)]
    row = summarise_zone(zone, samples, calibrated=ground is not None)
    assert row.mean_vehicles == vehicles
    assert row.density_veh_km_lane == (
        None if density is None else pytest.approx(density, rel=1e-3)
    )
    assert row.los == los


@pytest.mark.parametrize(
    ("classes", "pcu", "density_pcu", "los"),
    [
        (["car", "car"], PcuFactors(), 20.0, "D"),
        (["car", "truck"], PcuFactors(), 35.0, "F"),  # 1 + 2.5 PCU; by vehicles it would be D
        (["motorcycle", "motorcycle"], PcuFactors(), 8.0, "B"),
        (["bicycle", "bicycle", "bicycle"], PcuFactors(), 6.0, "A"),
        (["car", "truck"], PcuFactors(truck=1.0), 20.0, "D"),  # the camera's own factors
    ],
)
def test_pcu_density_sets_the_level_of_service(
    classes: list[VehicleClass], pcu: PcuFactors, density_pcu: float, los: str
) -> None:
    zone = SQUARE_ZONE.model_copy(update={"length_m": 100.0})
    meter = meter_of(zone, None, pcu)
    boxes = square_with_queue(len(classes))
    samples = [meter.observe(tracks_at(i / FPS, boxes, classes=classes)) for i in range(5)]
    row = summarise_zone(zone, samples, calibrated=False)
    assert row.density_veh_km_lane == pytest.approx(10.0 * len(classes))  # still vehicles
    assert row.density_pcu_km_lane == pytest.approx(density_pcu)
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
        density_pcu_km_lane=None,
    )


def test_speed_histogram_uses_contract_bins_with_open_last_bin() -> None:
    row = summarise_zone(
        ROAD_ZONE, [sample([0.0, 9.9, 10.0]), sample([55.0, 129.9, 130.0, 250.0])], True
    )
    expected = [0] * len(SPEED_BIN_EDGES_KMH)
    expected[0], expected[1], expected[5], expected[12], expected[13] = 2, 1, 1, 1, 2
    assert row.speed_histogram == expected
    assert row.mean_speed_kmh == pytest.approx(np.mean([0, 9.9, 10, 55, 129.9, 130, 250]), rel=1e-5)


def test_speed_histogram_is_held_to_the_contract_cap() -> None:
    row = summarise_zone(ROAD_ZONE, [sample([5.0] * (MAX_COUNT + 1)), sample([45.0])], True)
    assert row.speed_histogram is not None
    assert (row.speed_histogram[0], row.speed_histogram[4]) == (MAX_COUNT, 1)


def test_interval_without_samples_is_an_error_not_an_empty_road() -> None:
    with pytest.raises(ValueError, match="no samples"):
        summarise_zone(ROAD_ZONE, [], calibrated=True)


def test_stream_time_going_back_does_not_make_up_a_speed() -> None:
    meter = meter_of(ROAD_ZONE, road())
    point = to_image(road(), [[5.0, 20.0]])[0]
    for i in range(30):
        meter.observe(tracks_at(100 + i / FPS, [box_on(1, point)]))
    restarted = meter.observe(tracks_at(0.0, [box_on(1, point + 50)]))
    assert restarted.speeds_kmh == ()


def test_history_stays_bounded_on_an_endless_stream() -> None:
    """10^5 frames of passing traffic and one parked car: memory does not grow."""
    meter = meter_of(SQUARE_ZONE, road())
    frames, lifetime, concurrent = 100_000, 45, 4
    xs = np.linspace(200, 600, lifetime)
    # per track: positions over SPEED_SPAN_S, and a passage for it and for one just ended
    bound = (concurrent + 1) * (int(FPS * 1.0) + 2 + 2)
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
    meter = meter_of(zone, road() if calibrated else None)
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


# The freeway clip calibrated from its lane markings: the middle lane's two dashed dividers
# (US freeway lanes are 12 ft = 3.66 m wide) at the tops of two dashes one 40 ft = 12.19 m
# cycle apart (10 ft dashes, 30 ft gaps), read off frame 0 in native pixels.
FREEWAY_CALIBRATION = {
    "image_points": [[489.5, 452], [628, 452], [648, 541], [465.5, 541]],
    "ground_points_m": [[0, 12.19], [3.66, 12.19], [3.66, 0], [0, 0]],
}
FREEWAY_ZONE = {  # the three-lane main carriageway, about 50 m of it
    "name": "carriageway",
    "polygon": [[400, 345], [712, 345], [880, 650], [200, 650]],
    "lanes": 3,
}


@pytest.mark.slow
def test_real_freeway_clip_gives_plausible_vehicle_speeds() -> None:
    """The real model on the free-flowing freeway clip: about one speed per vehicle that
    crosses the reference line (24 by hand), all of them freeway speeds."""
    clip = load_clip(
        VIDEO / "freeway_approaching_1280x720.mp4",
        [{"name": "main_carriageway", "coords": [190, 470, 900, 470]}],
    )
    detector = VehicleDetector(ModelSettings(), str(MODEL))
    replay = count(clip, detector, calibration=FREEWAY_CALIBRATION, zones=[FREEWAY_ZONE])
    (row,) = [zone for report in replay.reports for zone in report.zones]

    assert row.speed_histogram is not None
    assert row.mean_speed_kmh is not None
    assert row.p85_speed_kmh is not None
    assert 20 <= sum(row.speed_histogram) <= 26
    assert sum(row.speed_histogram[:6]) == 0  # nobody under 60 km/h on a free-flowing freeway
    assert 85 <= row.mean_speed_kmh <= 115
    assert row.mean_speed_kmh <= row.p85_speed_kmh <= 130
    assert row.density_pcu_km_lane is not None
    assert row.density_veh_km_lane is not None
    assert row.density_pcu_km_lane <= row.density_veh_km_lane * 1.1  # cars, few heavies
