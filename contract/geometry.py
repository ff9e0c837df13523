"""Plane geometry both sides need: homography fitting, polygon validity, lat/lon to metres.

Shapely decides polygon validity (the GEOS rules, with the place of the first problem);
the homography is the normalised direct linear transform (Hartley and Zisserman, alg. 4.2),
fitted by least squares when more than four points are given.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from shapely.geometry import Polygon
from shapely.validation import explain_validity

Point = tuple[float, float]
Matrix = npt.NDArray[np.float64]

EARTH_RADIUS_M = 6_371_008.8
"""Mean Earth radius (IUGG); over a few hundred metres the local plane is exact to centimetres."""
COLLINEAR_TOLERANCE = 1e-3
"""Three points closer to one line than this share of their spread count as collinear."""


class HomographyError(ValueError):
    """The points cannot fix a homography (too few, repeated or collinear)."""


def _collinear(a: Point, b: Point, c: Point) -> bool:
    spread = max(math.dist(a, b), math.dist(b, c), math.dist(a, c))
    if spread == 0:
        return True
    twice_area = abs((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]))
    return twice_area / spread**2 < COLLINEAR_TOLERANCE


def _in_general_position(points: Sequence[Point]) -> bool:
    """Some four of the points have no three on one line (what a homography needs)."""
    return any(
        not any(_collinear(*triple) for triple in itertools.combinations(four, 3))
        for four in itertools.combinations(points, 4)
    )


def _check_points(image: Sequence[Point], ground: Sequence[Point]) -> None:
    for name, points in (("image", image), ("ground", ground)):
        if len(set(points)) != len(points):
            raise HomographyError(f"two {name} points are the same")
        if not _in_general_position(points):
            raise HomographyError(
                f"the {name} points are degenerate: no four of them are free of three on one "
                "line (spread them over the road, like the corners of a rectangle)"
            )


def _normaliser(points: Matrix) -> Matrix:
    """Similarity moving the points' centroid to 0 and their mean distance to sqrt(2)."""
    centre = points.mean(axis=0)
    spread = np.sqrt(((points - centre) ** 2).sum(axis=1)).mean()
    scale = math.sqrt(2) / spread
    return np.array(
        [[scale, 0, -scale * centre[0]], [0, scale, -scale * centre[1]], [0, 0, 1]],
        dtype=np.float64,
    )


def fit_homography(image: Sequence[Point], ground: Sequence[Point]) -> Matrix:
    """3x3 matrix mapping image points to ground points; HomographyError when degenerate."""
    if len(image) < 4 or len(image) != len(ground):
        raise HomographyError("a homography needs four or more image points with ground points")
    _check_points(image, ground)
    src, dst = np.asarray(image, np.float64), np.asarray(ground, np.float64)
    t_src, t_dst = _normaliser(src), _normaliser(dst)
    src_n = (t_src @ np.column_stack((src, np.ones(len(src)))).T).T
    dst_n = (t_dst @ np.column_stack((dst, np.ones(len(dst)))).T).T
    rows = []
    for (x, y, _), (u, v, _) in zip(src_n, dst_n, strict=True):
        rows.append([-x, -y, -1, 0, 0, 0, u * x, u * y, u])
        rows.append([0, 0, 0, -x, -y, -1, v * x, v * y, v])
    _, _, vt = np.linalg.svd(np.asarray(rows))
    normalised = vt[-1].reshape(3, 3)
    homography: Matrix = np.linalg.inv(t_dst) @ normalised @ t_src
    w = homography[2] @ np.column_stack((src, np.ones(len(src)))).T
    if not np.all(np.isfinite(homography)) or abs(w.mean()) < 1e-12:
        raise HomographyError(
            "the points do not fix a homography: check that each ground point belongs to its "
            "image point, in the same order"
        )
    homography, w = homography / w.mean(), w / w.mean()  # oriented: the points have w > 0
    if np.any(w <= 0):
        raise HomographyError(
            "the points put part of the image behind the camera: check that each ground point "
            "belongs to its image point, in the same order"
        )
    return homography


def project(homography: Matrix, points: Sequence[Point]) -> Matrix:
    """Apply a homography to (x, y) points."""
    pts = np.column_stack((np.asarray(points, np.float64), np.ones(len(points))))
    mapped = (homography @ pts.T).T
    projected: Matrix = mapped[:, :2] / mapped[:, 2:3]
    return projected


def reprojection_error(
    homography: Matrix, image: Sequence[Point], ground: Sequence[Point]
) -> float:
    """Root-mean-square distance between ground points and their projected image points."""
    residual = project(homography, image) - np.asarray(ground, np.float64)
    return float(np.sqrt((residual**2).sum(axis=1).mean()))


def polygon_problem(vertices: Sequence[Point]) -> str | None:
    """What makes a polygon unusable as a zone (zero area, self-intersection), or None."""
    polygon = Polygon(vertices)
    if polygon.convex_hull.area <= 1e-12:  # every vertex on one line (a bow-tie is not)
        return "its polygon has zero area"
    if not polygon.is_valid:
        return f"its polygon is not simple ({explain_validity(polygon)})"
    return None


def local_metres(latlon: Sequence[Point], origin: Point | None = None) -> list[Point]:
    """Latitude/longitude pairs as (east, north) metres on the local tangent plane around
    ``origin`` (default: their centroid); accurate to well under 0.1 % within a kilometre."""
    lat0, lon0 = origin or (
        sum(p[0] for p in latlon) / len(latlon),
        sum(p[1] for p in latlon) / len(latlon),
    )
    cos_lat = math.cos(math.radians(lat0))
    return [
        (
            math.radians(lon - lon0) * EARTH_RADIUS_M * cos_lat,
            math.radians(lat - lat0) * EARTH_RADIUS_M,
        )
        for lat, lon in latlon
    ]
