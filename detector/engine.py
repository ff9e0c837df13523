"""One camera's pipeline: detect -> track -> count / congestion -> aggregate.

The same engine serves the long-lived worker and ``python -m detector count``. The frame
is decoded only for analysed frames, handed to the detector, and released before the
later stages run; they see boxes only.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from contract import IntervalReport, VehicleClass
from detector.aggregate import HealthCounters, IntervalAggregator
from detector.config import Camera
from detector.congestion import GroundCalibration, ZoneMeter, summarise_zone
from detector.count import LineCounter, PixelLine
from detector.currency import Crossing, FrameMeta, ZoneSample
from detector.detect import Region, VehicleDetector
from detector.source import PendingFrame, SourceError
from detector.track import VehicleTracker

CountKey = tuple[str, str, VehicleClass]
log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Geometry:
    """Everything that depends on the frame size, built from the first frame (and rebuilt
    if a reconnected camera comes back at another resolution)."""

    size: tuple[int, int]
    region: Region
    counter: LineCounter
    zone_meters: list[ZoneMeter]
    tracker: VehicleTracker


class CameraPipeline:
    """Turns one stream's frames into crossings, zone samples and interval reports."""

    def __init__(
        self,
        camera: Camera,
        detector: VehicleDetector,
        stream_fps: float,
        health: Callable[[], HealthCounters] = HealthCounters,
        detector_lock: threading.Lock | None = None,
    ) -> None:
        self.camera = camera
        self.detector = detector
        self.stream_fps = stream_fps
        self.analysed_fps = min(stream_fps, camera.max_detect_fps)
        self._detector_lock = detector_lock or threading.Lock()
        self._geometry: _Geometry | None = None
        self._last_analysed_s: float | None = None
        self.totals: Counter[CountKey] = Counter()
        self.frames_analysed = 0
        zones = {zone.name: zone for zone in camera.zones}
        calibrated = camera.calibration is not None
        self.aggregator = IntervalAggregator(
            camera.id,
            camera.interval_seconds,
            lambda name, samples: summarise_zone(zones[name], samples, calibrated),
            health,
        )

    def process(self, pending: PendingFrame) -> list[IntervalReport]:
        """Analyse the frame if it is due; returns reports of intervals that closed."""
        meta = pending.meta
        if not self._due(meta):
            return []
        geometry = self._geometry
        if geometry is None or geometry.size != (meta.width, meta.height):
            geometry = self._build_geometry(meta.width, meta.height)
        try:
            frame = pending.decode()
        except SourceError as exc:
            log.warning("camera %s: frame %d skipped: %s", self.camera.id, meta.index, exc)
            return []
        with self._detector_lock:
            detections = self.detector.detect(frame, geometry.region)
        del frame  # pixels go no further than the detector
        reports = self.aggregator.add_frame(meta)
        tracks = geometry.tracker.update(detections)
        crossings = geometry.counter.update(tracks)
        geometry.counter.forget(set(tracks.track_id.tolist()) | geometry.tracker.held_track_ids())
        samples = [meter.observe(tracks) for meter in geometry.zone_meters]
        self._record(crossings, samples)
        self.frames_analysed += 1
        return reports

    def finish(self) -> list[IntervalReport]:
        """Close the open interval (marked partial) when the stream ends or the worker stops."""
        return self.aggregator.flush()

    def _due(self, meta: FrameMeta) -> bool:
        """Analyse at most ``max_detect_fps`` frames per stream second; the rest cost a grab.

        Half a stream frame of tolerance keeps jittery timestamps from skipping frames.
        """
        last = self._last_analysed_s
        threshold = 1 / self.analysed_fps - 0.5 / self.stream_fps
        if last is not None and meta.timestamp_s - last < threshold:
            return False
        self._last_analysed_s = meta.timestamp_s
        return True

    def _record(self, crossings: list[Crossing], samples: list[ZoneSample]) -> None:
        self.aggregator.add_crossings(crossings)
        self.aggregator.add_zone_samples(samples)
        for crossing in crossings:
            self.totals[(crossing.line, crossing.direction, crossing.vehicle_class)] += 1

    def _build_geometry(self, width: int, height: int) -> _Geometry:
        camera = self.camera
        scale = camera.scale(width, height)
        lines = [PixelLine.from_config(line, scale) for line in camera.lines]
        calibration = (
            GroundCalibration.from_config(camera.calibration, scale) if camera.calibration else None
        )
        points = [p for line in lines for p in (line.start, line.end)]
        points += [(x * scale[0], y * scale[1]) for zone in camera.zones for x, y in zone.polygon]
        self._geometry = _Geometry(
            size=(width, height),
            region=Region.around(points, width, height),
            counter=LineCounter(lines),
            zone_meters=[ZoneMeter(zone, scale, calibration) for zone in camera.zones],
            tracker=VehicleTracker(self.analysed_fps),
        )
        return self._geometry
