"""Pacing stage: how many of a camera's frames to analyse, from the motion its tracks show.

A track holds while its vehicle moves a small part of its own box between analysed frames
(the boxes still overlap well, whatever the Kalman filter predicts), so a camera whose
tracked vehicles crawl, queue or stand can analyse every second or third frame with no loss;
one whose vehicles move fast cannot. The pacer analyses every ``stride``-th frame of the top
rate (``max_detect_fps``, at most the stream's) and chooses the stride from the fastest
tracked vehicle, relative to its box size, over the last analysed frames.

It errs one way only. The stride goes back to 1 at once whenever anything is uncertain: no
tracked vehicle at all (the motion gate then makes empty frames cheap instead), a tracked
vehicle moving faster than the stride allows, or motion anywhere but around the vehicles
whose slow motion has been measured (``news``, from the motion probe: a vehicle entering, one
not confirmed yet or lost, anything else that moves). Motion is checked on every frame of
the top rate, analysed or not, so the full rate comes back on the very frame it appears.
The stride rises only when every tracked vehicle has been measured, after ``CALM_S``
without any of that, and never makes the rate fall below the configured minimum.
"""

from __future__ import annotations

import math

import numpy as np

from detector.currency import Tracks

STEP_LIMIT = 0.1
"""Most a vehicle may move between analysed frames, in sizes of its box's shorter side
(boxes of the same size then still overlap by IoU 0.8). At the stream rate the shared
clips' vehicles move 0.13-0.24 box sizes per frame and are tracked without loss."""
CALM_S = 1.0
"""Stream seconds without any reason for the full rate before the stride may rise."""


class AnalysisPacer:
    """Chooses which frames of the top rate one camera analyses."""

    def __init__(self, top_fps: float, min_fps: float) -> None:
        self.top_fps = top_fps
        self.max_stride = max(1, math.floor(top_fps / min(min_fps, top_fps) + 1e-9))
        self.stride = 1
        self._waited = 0
        self._calm_since: float | None = None
        self._last_seen: dict[int, tuple[float, float, float]] = {}
        self._measured: set[int] = set()

    @property
    def fps(self) -> float:
        """The analysis rate now chosen."""
        return self.top_fps / self.stride

    def due(self) -> bool:
        """Call once per frame of the top rate: whether this one is analysed."""
        self._waited += 1
        if self._waited < self.stride:
            return False
        self._waited = 0
        return True

    @property
    def measured(self) -> set[int]:
        """Ids of the tracks whose motion the last analysed frame measured."""
        return self._measured

    def alarm(self, now_s: float) -> None:
        """Something moved besides the measured vehicles: the full rate, from this frame on."""
        self._full_rate(now_s)
        self._waited = 0

    def observe(self, tracks: Tracks, news: bool) -> None:
        """Learn from an analysed frame's confirmed tracks; ``news``: the motion probe saw
        motion besides the measured vehicles since the detector last ran."""
        now = tracks.meta.timestamp_s
        step = self._fastest_step(tracks, now)
        if news or not len(tracks):
            self._full_rate(now)
            return
        if self._calm_since is None:
            self._calm_since = now
        fitting = self.max_stride if step <= 0 else max(1, math.floor(STEP_LIMIT / step))
        if fitting < self.stride:
            self._full_rate(now)
            self.stride = fitting
        elif now - self._calm_since >= CALM_S and len(self._measured) == len(tracks):
            self.stride = min(self.max_stride, fitting)  # every vehicle measured, all slow

    def _full_rate(self, now_s: float) -> None:
        self.stride = 1
        self._calm_since = now_s

    def _fastest_step(self, tracks: Tracks, now_s: float) -> float:
        """The largest move per top-rate frame, in box sizes, of the vehicles also seen on
        the previous analysed frame (which become the measured ones)."""
        centres = tracks.centres()
        widths = tracks.xyxy[:, 2] - tracks.xyxy[:, 0]
        heights = tracks.xyxy[:, 3] - tracks.xyxy[:, 1]
        sizes = np.maximum(np.minimum(widths, heights), 1.0)
        step = 0.0
        seen: dict[int, tuple[float, float, float]] = {}
        self._measured = set()
        for track_id, (x, y), size in zip(
            tracks.track_id.tolist(), centres.tolist(), sizes.tolist(), strict=True
        ):
            seen[track_id] = (x, y, now_s)
            before = self._last_seen.get(track_id)
            if before is None:
                continue
            frames = max((now_s - before[2]) * self.top_fps, 1.0)
            step = max(step, math.hypot(x - before[0], y - before[1]) / size / frames)
            self._measured.add(track_id)
        self._last_seen = seen
        return step
