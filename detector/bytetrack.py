"""ByteTrack (Zhang et al., ECCV 2022) in numpy alone, as the tracking stage runs it.

A port of Ultralytics' ``BYTETracker`` (ultralytics 8.4.190, AGPL-3.0 like this project),
reduced to what the tracking stage uses: axis-aligned boxes, association by overlap alone,
no camera-motion compensation, no re-identification. Ultralytics' own cannot be imported
without torch, which cost every worker and every ``count`` about half a gigabyte of memory
and a second or more of start-up for arithmetic numpy does. It computes what Ultralytics'
does in the same order and precision, step for step, and
``tests/detector/test_bytetrack.py`` holds it to exactly Ultralytics' tracks, frame by frame.

Two-stage association: confirmed and lost tracks, moved on by a constant-velocity Kalman
filter over (centre x, centre y, aspect, height), are matched by IoU to the confident boxes,
then the still-unmatched confirmed tracks to the weak boxes; a new track is confirmed by a
match on the next frame; a track lost for longer than the buffer is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import lap
import numpy as np
import numpy.typing as npt

from detector.currency import FloatArray

Float64 = npt.NDArray[np.float64]
STD_POSITION = 1.0 / 20
STD_VELOCITY = 1.0 / 160
REMOVED_MEMORY = 1000
"""Removed tracks remembered (their ids keep a track removed this frame out of the lost pool)."""
DUPLICATE_COST = 0.15
"""A tracked and a lost track overlapping by IoU above 0.85 are one vehicle: the younger goes."""
_MOTION = np.eye(8)
_MOTION[range(4), range(4, 8)] = 1.0


@dataclass(frozen=True, slots=True)
class ByteTrackSettings:
    """Thresholds of the two association stages and the lost-track buffer (frames)."""

    high_threshold: float
    low_threshold: float
    new_track_threshold: float
    match_threshold: float
    buffer_frames: int


class _State(Enum):
    TRACKED = 1
    LOST = 2
    REMOVED = 3


class _Track:
    """One box's track: a detection until activated, then a Kalman-filtered trajectory."""

    __slots__ = (
        "covariance",
        "frame_id",
        "index",
        "is_activated",
        "mean",
        "score",
        "start_frame",
        "state",
        "tlwh_detected",
        "track_id",
    )

    def __init__(self, xywh: npt.NDArray[np.float32], score: float, index: int) -> None:
        centre_wh = xywh.astype(np.float64)
        corner = centre_wh.copy()
        corner[:2] = centre_wh[:2] - centre_wh[2:] / 2
        self.tlwh_detected = corner.astype(np.float32)
        self.score = score
        self.index = index
        self.mean: Float64 | None = None
        self.covariance: Float64 | None = None
        self.is_activated = False
        self.state = _State.TRACKED
        self.track_id = 0
        self.frame_id = 0
        self.start_frame = 0

    def tlwh(self) -> npt.NDArray[Any]:
        if self.mean is None:
            return self.tlwh_detected.copy()
        box = self.mean[:4].copy()
        box[2] *= box[3]
        box[:2] -= box[2:] / 2
        return box

    def xyxy(self) -> npt.NDArray[Any]:
        box = self.tlwh()
        box[2:] += box[:2]
        return box

    def activate(self, track_id: int, frame_id: int) -> None:
        self.track_id = track_id
        self.mean, self.covariance = _initiate(_xyah(self.tlwh_detected))
        self.state = _State.TRACKED
        self.is_activated = frame_id == 1
        self.frame_id = self.start_frame = frame_id

    def follow(self, detection: _Track, frame_id: int) -> None:
        """Update with a matched detection (a lost track is found again the same way)."""
        assert self.mean is not None
        assert self.covariance is not None
        self.mean, self.covariance = _update(self.mean, self.covariance, _xyah(detection.tlwh()))
        self.state = _State.TRACKED
        self.is_activated = True
        self.frame_id = frame_id
        self.score = detection.score
        self.index = detection.index


def _xyah(tlwh: npt.NDArray[Any]) -> npt.NDArray[Any]:
    box = tlwh.copy()
    box[:2] += box[2:] / 2
    box[2] /= box[3]
    return box


def _initiate(measurement: npt.NDArray[Any]) -> tuple[Float64, Float64]:
    position = np.asarray(measurement, dtype=np.float64)
    mean = np.r_[position, np.zeros_like(position)]
    h = position[3]
    std = [
        *(2 * STD_POSITION * h, 2 * STD_POSITION * h, 1e-2, 2 * STD_POSITION * h),
        *(10 * STD_VELOCITY * h, 10 * STD_VELOCITY * h, 1e-5, 10 * STD_VELOCITY * h),
    ]
    return mean, np.diag(np.square(std))


def _multi_predict(mean: Float64, covariance: Float64) -> tuple[Float64, Float64]:
    h = mean[:, 3]
    ones = np.ones_like(h)
    std_pos = [STD_POSITION * h, STD_POSITION * h, 1e-2 * ones, STD_POSITION * h]
    std_vel = [STD_VELOCITY * h, STD_VELOCITY * h, 1e-5 * ones, STD_VELOCITY * h]
    squared = np.square(np.r_[std_pos, std_vel]).T
    motion_cov = np.zeros((squared.shape[0], 8, 8))
    motion_cov[:, range(8), range(8)] = squared
    mean = np.dot(mean, _MOTION.T)
    left = np.dot(_MOTION, covariance).transpose((1, 0, 2))
    return mean, np.dot(left, _MOTION.T) + motion_cov


def _update(
    mean: Float64, covariance: Float64, measurement: npt.NDArray[Any]
) -> tuple[Float64, Float64]:
    h = mean[3]
    innovation_cov = np.diag(
        np.square([STD_POSITION * h, STD_POSITION * h, 1e-1, STD_POSITION * h])
    )
    projected_mean = mean[:4].copy()
    projected_cov = covariance[:4, :4] + innovation_cov
    gain = np.linalg.solve(projected_cov, covariance[:, :4].T).T
    new_mean = mean + np.dot(measurement - projected_mean, gain.T)
    new_covariance = covariance - np.linalg.multi_dot((gain, projected_cov, gain.T))
    return new_mean, new_covariance


def _iou_cost(a: Sequence[_Track], b: Sequence[_Track]) -> npt.NDArray[np.float32]:
    """1 - IoU of every pair, in float32 as Ultralytics computes it."""
    ious = np.zeros((len(a), len(b)), dtype=np.float32)
    if a and b:
        boxes_a = np.ascontiguousarray([t.xyxy() for t in a], dtype=np.float32)
        boxes_b = np.ascontiguousarray([t.xyxy() for t in b], dtype=np.float32)
        ax1, ay1, ax2, ay2 = boxes_a.T
        bx1, by1, bx2, by2 = boxes_b.T
        inter = (np.minimum(ax2[:, None], bx2) - np.maximum(ax1[:, None], bx1)).clip(0) * (
            np.minimum(ay2[:, None], by2) - np.maximum(ay1[:, None], by1)
        ).clip(0)
        union = (bx2 - bx1) * (by2 - by1) + ((ax2 - ax1) * (ay2 - ay1))[:, None] - inter
        ious = inter / (union + 1e-7)
    cost: npt.NDArray[np.float32] = 1 - ious
    return cost


def _assign(
    cost: npt.NDArray[np.float32], limit: float
) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Matched (row, column) pairs below ``limit`` and the unmatched rows and columns."""
    if cost.size == 0:
        return [], list(range(cost.shape[0])), list(range(cost.shape[1]))
    _, rows, columns = lap.lapjv(cost, extend_cost=True, cost_limit=limit)
    matches = [(r, int(c)) for r, c in enumerate(rows) if c >= 0]
    return matches, np.where(rows < 0)[0].tolist(), np.where(columns < 0)[0].tolist()


def _joint(a: list[_Track], b: list[_Track]) -> list[_Track]:
    ids = {t.track_id for t in a}
    return a + [t for t in b if t.track_id not in ids]


def _without(a: list[_Track], ids: set[int]) -> list[_Track]:
    return [t for t in a if t.track_id not in ids]


class ByteTracker:
    """Tracks boxes frame by frame; ids are this tracker's own, from 1."""

    def __init__(self, settings: ByteTrackSettings) -> None:
        self.settings = settings
        self.tracked: list[_Track] = []
        self.lost: list[_Track] = []
        self._removed_ids: list[int] = []
        self.frame_id = 0
        self._last_id = 0

    def held_track_ids(self) -> set[int]:
        """Tracked (confirmed or not) and lost tracks: everything that may still match."""
        return {t.track_id for t in self.tracked + self.lost}

    def unsettled_boxes(self) -> FloatArray:
        """Boxes (x1, y1, x2, y2) of the tracks not confirmed yet and of the lost ones, where
        the Kalman filter expects them now."""
        unconfirmed = [t for t in self.tracked if not t.is_activated]
        boxes = [t.xyxy() for t in unconfirmed + self.lost]
        return np.asarray(boxes, dtype=np.float32).reshape(-1, 4)

    def update(self, xyxy: FloatArray, confidence: FloatArray) -> FloatArray:
        """Associate one frame's boxes; returns one row per confirmed track matched in it:
        x1, y1, x2, y2, track id, score, detection index (float32)."""
        s = self.settings
        self.frame_id += 1
        high, low = self._detections(xyxy, confidence)
        unconfirmed = [t for t in self.tracked if not t.is_activated]
        pool = _joint([t for t in self.tracked if t.is_activated], self.lost)
        if pool:
            means, covariances = _multi_predict(*self._kalman_state(pool))
            for track, mean, covariance in zip(pool, means, covariances, strict=True):
                track.mean, track.covariance = mean, covariance
        activated: list[_Track] = []
        refound: list[_Track] = []
        matches, unmatched_tracks, unmatched = _assign(_iou_cost(pool, high), s.match_threshold)
        for t, d in matches:
            (activated if pool[t].state == _State.TRACKED else refound).append(pool[t])
            pool[t].follow(high[d], self.frame_id)
        lost = self._second_stage([pool[i] for i in unmatched_tracks], low, activated)
        leftover = [high[i] for i in unmatched]
        removed, fresh = self._confirm(unconfirmed, leftover, activated)
        for i in fresh:
            if leftover[i].score >= s.new_track_threshold:
                self._last_id += 1
                leftover[i].activate(self._last_id, self.frame_id)
                activated.append(leftover[i])
        stale = [t for t in self.lost if self.frame_id - t.frame_id > s.buffer_frames]
        for track in stale:
            track.state = _State.REMOVED
        self._merge(activated, refound, lost, removed + stale)
        return np.asarray(
            [
                [*t.xyxy().tolist(), t.track_id, t.score, t.index]
                for t in self.tracked
                if t.is_activated
            ],
            dtype=np.float32,
        ).reshape(-1, 7)

    def _detections(
        self, xyxy: FloatArray, confidence: FloatArray
    ) -> tuple[list[_Track], list[_Track]]:
        """Confident and weak boxes as candidate tracks (boxes without area are dropped)."""
        s = self.settings
        xywh = np.empty_like(xyxy)
        xywh[:, 0] = (xyxy[:, 0] + xyxy[:, 2]) / 2
        xywh[:, 1] = (xyxy[:, 1] + xyxy[:, 3]) / 2
        xywh[:, 2] = xyxy[:, 2] - xyxy[:, 0]
        xywh[:, 3] = xyxy[:, 3] - xyxy[:, 1]
        valid = (xywh[:, 2] > 0) & (xywh[:, 3] > 0)
        high = valid & (confidence >= s.high_threshold)
        low = valid & (confidence > s.low_threshold) & (confidence < s.high_threshold)
        return (
            [_Track(xywh[i], confidence[i], int(i)) for i in np.flatnonzero(high)],
            [_Track(xywh[i], confidence[i], int(i)) for i in np.flatnonzero(low)],
        )

    @staticmethod
    def _kalman_state(tracks: list[_Track]) -> tuple[Float64, Float64]:
        means = np.asarray([t.mean for t in tracks])
        for i, track in enumerate(tracks):
            if track.state != _State.TRACKED:
                means[i][7] = 0  # a lost box keeps moving but stops growing
        return means, np.asarray([t.covariance for t in tracks])

    def _second_stage(
        self, unmatched: list[_Track], weak: list[_Track], activated: list[_Track]
    ) -> list[_Track]:
        """Match still-unmatched tracked tracks to weak boxes; the rest are lost."""
        remaining = [t for t in unmatched if t.state == _State.TRACKED]
        still = list(range(len(remaining)))
        if remaining and weak:
            matches, still, _ = _assign(_iou_cost(remaining, weak), 0.5)
            for t, d in matches:
                activated.append(remaining[t])
                remaining[t].follow(weak[d], self.frame_id)
        for i in still:
            remaining[i].state = _State.LOST
        return [remaining[i] for i in still]

    def _confirm(
        self, unconfirmed: list[_Track], leftover: list[_Track], activated: list[_Track]
    ) -> tuple[list[_Track], list[int]]:
        """Confirm new tracks matched again; returns those removed and the indices of the
        boxes still unmatched (each may start a track)."""
        if not unconfirmed:
            return [], list(range(len(leftover)))
        matches, unmatched_tracks, unmatched = _assign(_iou_cost(unconfirmed, leftover), 0.7)
        for t, d in matches:
            unconfirmed[t].follow(leftover[d], self.frame_id)
            activated.append(unconfirmed[t])
        removed = [unconfirmed[i] for i in unmatched_tracks]
        for track in removed:
            track.state = _State.REMOVED
        return removed, unmatched

    def _merge(
        self,
        activated: list[_Track],
        refound: list[_Track],
        lost: list[_Track],
        removed: list[_Track],
    ) -> None:
        tracked = [t for t in self.tracked if t.state == _State.TRACKED]
        tracked = _joint(_joint(tracked, activated), refound)
        still_lost = _without(self.lost, {t.track_id for t in tracked}) + lost
        # Ids removed before this frame only: a track removed now stays in the pool one more
        # frame, as in Ultralytics.
        still_lost = _without(still_lost, set(self._removed_ids))
        self.tracked, self.lost = self._without_duplicates(tracked, still_lost)
        self._removed_ids = (self._removed_ids + [t.track_id for t in removed])[-REMOVED_MEMORY:]

    @staticmethod
    def _without_duplicates(
        tracked: list[_Track], lost: list[_Track]
    ) -> tuple[list[_Track], list[_Track]]:
        """Of a tracked and a lost track on one vehicle, keep the one followed longer."""
        cost = _iou_cost(tracked, lost)
        drop_tracked, drop_lost = set(), set()
        for p, q in zip(*np.where(cost < DUPLICATE_COST), strict=True):
            if (
                tracked[p].frame_id - tracked[p].start_frame
                > lost[q].frame_id - lost[q].start_frame
            ):
                drop_lost.add(int(q))
            else:
                drop_tracked.add(int(p))
        return (
            [t for i, t in enumerate(tracked) if i not in drop_tracked],
            [t for i, t in enumerate(lost) if i not in drop_lost],
        )
