"""Tracking stage: Detections -> Tracks with throw-away ids (ByteTrack, ``detector.bytetrack``).

Ids live only in this process and only while a vehicle is in view; lost tracks are
pruned by ByteTrack's buffer, so memory stays bounded on a 24/7 stream. A track must be
matched on consecutive frames before it is reported, so one-frame flickers never count.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from contract import VEHICLE_CLASSES, VehicleClass
from detector.bytetrack import ByteTracker, ByteTrackSettings
from detector.currency import Detections, FloatArray, Tracks

CLASS_INDEX: dict[VehicleClass, int] = {name: i for i, name in enumerate(VEHICLE_CLASSES)}


@dataclass(frozen=True, slots=True)
class TrackerSettings:
    """ByteTrack thresholds. The low second-stage threshold keeps weak, distant cars tracked;
    associating by box overlap alone (not overlap x score, which ByteTrack can also do) with a
    looser gate keeps small,
    fast or partly hidden vehicles on one track at 160x120 and on dense roads, where a
    broken track would start past the line and never be counted. New tracks start only
    from first-stage boxes and are confirmed by a first-stage box on the next frame, so
    the first-stage threshold is what lets a weak vehicle (0.2-0.3 at 160x120) be
    confirmed before it reaches the line."""

    high_threshold: float = 0.2
    low_threshold: float = 0.05
    new_track_threshold: float = 0.2
    match_threshold: float = 0.9
    lost_seconds: float = 1.5


class VehicleTracker:
    """ByteTrack over vehicle detections, with a per-track class vote against label flicker."""

    def __init__(self, analysed_fps: float, settings: TrackerSettings | None = None) -> None:
        self.settings = settings or TrackerSettings()
        s = self.settings
        self._tracker = ByteTracker(
            ByteTrackSettings(
                high_threshold=s.high_threshold,
                low_threshold=s.low_threshold,
                new_track_threshold=s.new_track_threshold,
                match_threshold=s.match_threshold,
                buffer_frames=max(1, round(s.lost_seconds * analysed_fps)),
            )
        )
        self._class_votes: dict[int, Counter[VehicleClass]] = {}

    def update(self, detections: Detections) -> Tracks:
        """Associate this frame's detections with live tracks; return the confirmed ones."""
        meta = detections.meta
        rows = self._tracker.update(detections.xyxy.reshape(-1, 4), detections.confidence)
        self._forget_removed_tracks()
        if len(rows) == 0:
            return Tracks(meta, np.zeros(0, np.int64), np.zeros((0, 4), np.float32), ())
        track_ids = rows[:, 4].astype(np.int64)
        detection_index = rows[:, 6].astype(np.int64)
        classes = tuple(
            self._vote(
                int(tid), detections.vehicle_class[int(idx)], float(detections.confidence[idx])
            )
            for tid, idx in zip(track_ids, detection_index, strict=True)
        )
        return Tracks(meta, track_ids, rows[:, :4].astype(np.float32), classes)

    def _vote(self, track_id: int, vehicle_class: VehicleClass, confidence: float) -> VehicleClass:
        """Confidence-weighted majority class over the track's life (car/truck flicker)."""
        votes = self._class_votes.setdefault(track_id, Counter())
        votes[vehicle_class] += max(1, round(confidence * 100))
        return votes.most_common(1)[0][0]

    def _forget_removed_tracks(self) -> None:
        """Drop class votes of tracks ByteTrack no longer holds."""
        for track_id in self._class_votes.keys() - self.held_track_ids():
            del self._class_votes[track_id]

    def held_track_ids(self) -> set[int]:
        """Ids still held (tracked or lost but recoverable, confirmed or not yet); everything
        else is forgotten."""
        return self._tracker.held_track_ids()

    def unsettled_boxes(self) -> FloatArray:
        """Where the tracks are that are not confirmed yet or lost (their motion is not
        known to have stayed small)."""
        return self._tracker.unsettled_boxes()
