"""The shared geometry: homography fitting, its refusals, polygon validity, lat/lon to metres."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract.camera import Calibration
from contract.geometry import (
    HomographyError,
    fit_homography,
    local_metres,
    polygon_problem,
    project,
    reprojection_error,
)

# A road seen in perspective: a 10 m x 40 m rectangle on the ground.
IMAGE = [(200.0, 700.0), (1080.0, 700.0), (760.0, 300.0), (520.0, 300.0)]
GROUND = [(0.0, 0.0), (10.0, 0.0), (10.0, 40.0), (0.0, 40.0)]


def test_four_points_are_fitted_exactly() -> None:
    homography = fit_homography(IMAGE, GROUND)
    assert reprojection_error(homography, IMAGE, GROUND) < 1e-9
    # the middle of the near edge is 5 m across
    (x, y) = project(homography, [(640.0, 700.0)])[0]
    assert (x, y) == pytest.approx((5.0, 0.0), abs=1e-9)


def test_more_points_are_fitted_by_least_squares_with_their_error() -> None:
    homography = fit_homography(IMAGE, GROUND)
    extra_image = [(640.0, 500.0), (400.0, 600.0)]
    extra_ground = [tuple(p) for p in project(homography, extra_image).tolist()]
    noisy = [(x + 0.3, y - 0.2) for x, y in extra_ground]  # 36 cm off: a sloppy survey
    calibration = Calibration(image_points=IMAGE + extra_image, ground_points_m=GROUND + noisy)
    error = calibration.reprojection_error_m()
    assert 0.01 < error < 0.36


@pytest.mark.parametrize(
    ("image", "ground", "message"),
    [
        (IMAGE[:3], GROUND[:3], "four or more"),
        ([(0, 0), (1, 1), (2, 2), (0, 5)], GROUND, "degenerate"),  # three on a diagonal
        ([(0, 0), (0, 0), (5, 5), (0, 5)], GROUND, "the same"),
        (IMAGE, [(0, 0), (10, 0), (20, 0), (0, 40)], "degenerate"),  # ground on one line
        (IMAGE, [GROUND[0], GROUND[2], GROUND[1], GROUND[3]], "same order"),  # order mixed
        ([*IMAGE, (1, 1), (2, 2)], [*GROUND, (1, 1)], "four or more"),  # unequal lengths
    ],
)
def test_degenerate_points_are_refused_with_the_reason(
    image: list[tuple[float, float]], ground: list[tuple[float, float]], message: str
) -> None:
    with pytest.raises(HomographyError, match=message):
        fit_homography(image, ground)


coordinate = st.floats(min_value=0, max_value=1920, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(coordinate, coordinate), min_size=4, max_size=8, unique=True),
    st.floats(min_value=-0.0004, max_value=0.0004),
    st.floats(min_value=0.01, max_value=0.2),
)
def test_any_points_in_general_position_are_recovered(
    image: list[tuple[float, float]], tilt: float, scale: float
) -> None:
    """Ground points made by a known homography are fitted back to it, or refused as
    degenerate; the fit never silently returns a wrong mapping."""
    truth = np.array([[scale, 0.1 * scale, 3.0], [0.0, scale, -2.0], [0.0, tilt, 1.0]])
    if np.any(truth[2] @ np.column_stack((image, np.ones(len(image)))).T <= 0.05):
        return  # a point at or beyond the horizon of this view
    ground = [(float(x), float(y)) for x, y in project(truth, image)]
    try:
        homography = fit_homography(image, ground)
    except HomographyError as exc:
        refusal = str(exc)
    else:
        refusal = ""
    if refusal:
        assert "degenerate" in refusal or "the same" in refusal
        return
    spread = max(math.dist(a, b) for a in ground for b in ground)
    assert reprojection_error(homography, image, ground) <= 1e-6 * max(spread, 1.0)


@pytest.mark.parametrize(
    ("polygon", "problem"),
    [
        ([(0, 0), (1, 0), (1, 1), (0, 1)], None),
        ([(0, 0), (4, 0), (4, 1), (2, 3), (0, 1)], None),  # concave is fine
        ([(0, 0), (1, 1), (1, 0), (0, 1)], "not simple"),  # a bow-tie
        ([(0, 0), (1, 0), (2, 0)], "zero area"),
        ([(0, 0), (1, 0), (1, 0), (0, 0)], "zero area"),
    ],
)
def test_polygon_problems(polygon: list[tuple[float, float]], problem: str | None) -> None:
    found = polygon_problem(polygon)
    assert (found is None) if problem is None else (found is not None and problem in found)


def haversine_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    (lat1, lon1), (lat2, lon2) = (tuple(map(math.radians, p)) for p in (a, b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6_371_008.8 * math.asin(math.sqrt(h))


@pytest.mark.parametrize("latitude", [0.0, 48.1, 53.55, 69.6])
def test_lat_lon_become_local_metres_within_a_millimetre_per_metre(latitude: float) -> None:
    points = [(latitude, 10.0), (latitude + 0.004, 10.0), (latitude + 0.002, 10.006)]
    metres = local_metres(points)
    for i in range(3):
        for j in range(i + 1, 3):
            expected = haversine_m(points[i], points[j])
            assert math.dist(metres[i], metres[j]) == pytest.approx(expected, rel=1e-3)
    # east is +x, north is +y
    assert metres[1][1] > metres[0][1]
    assert metres[2][0] > metres[0][0]
