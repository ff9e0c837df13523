"""One camera's pipeline: (motion gate) -> detect -> track -> count / congestion -> aggregate.

The same engine serves the long-lived worker and ``python -m detector count``. A frame is
decoded only when it is analysed or watched, handed to the motion probe and the detector,
and released before the later stages run; they see boxes only.

Two savings, both on by default and both erring towards detection (``detector.motion``,
``detector.pacing``): the pacer analyses every second or third frame while every tracked
vehicle crawls or stands, and watches the frames in between for motion anywhere but around
them; the motion gate skips the detector on an analysed frame when nothing moved since it
last ran and no vehicle is tracked. A skipped frame goes through the later stages as a frame
with no vehicle in it (which is what it holds), so coverage, zone samples and observers see it.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from contract import IntervalReport, VehicleClass, ZoneRow
from contract.site import Camera
from detector.aggregate import HealthCounters, IntervalAggregator
from detector.congestion import GroundCalibration, ZoneMeter, summarise_zone
from detector.count import LineCounter, PixelLine
from detector.currency import (
    Crossing,
    Detections,
    FloatArray,
    Frame,
    FrameMeta,
    MovementTally,
    Tracks,
    ZoneSample,
)
from detector.detect import Region, VehicleDetector
from detector.motion import MotionProbe
from detector.movements import MovementTracker
from detector.pacing import AnalysisPacer
from detector.source import PendingFrame, SourceError
from detector.track import VehicleTracker

CountKey = tuple[str, str, VehicleClass]
log = logging.getLogger(__name__)


class TrackObserver(Protocol):
    """A stage that learns from confirmed tracks in memory (the scene map); it must keep
    nothing per vehicle beyond the life of the track."""

    def observe(self, tracks: Tracks) -> None: ...


@dataclass(slots=True)
class _Geometry:
    """Everything that depends on the frame size, built from the first frame (and rebuilt
    if a reconnected camera comes back at another resolution)."""

    size: tuple[int, int]
    region: Region
    counter: LineCounter
    movements: MovementTracker | None
    """Gate-to-gate movements, when the camera counts them."""
    zone_meters: list[ZoneMeter]
    tracker: VehicleTracker
    pacer: AnalysisPacer
    probe: MotionProbe
    """Enabled when the motion gate or the pacer needs it."""
    known_boxes: FloatArray
    """Boxes of the vehicles whose (slow) motion the last analysed frame measured: motion
    around them is theirs."""
    unknown_boxes: FloatArray
    """Boxes of the other vehicles held (new, unconfirmed, lost): motion there is news."""


class CameraPipeline:
    """Turns one stream's frames into crossings, zone samples and interval reports.

    Pipelines of several cameras may share one ``VehicleDetector`` from their own threads;
    it runs their inferences in parallel.
    """

    def __init__(
        self,
        camera: Camera,
        detector: VehicleDetector,
        stream_fps: float,
        health: Callable[[], HealthCounters] = HealthCounters,
        *,
        config_version: int | None = None,
        observers: Sequence[TrackObserver] = (),
        movements: bool | None = None,
    ) -> None:
        self.camera = camera
        self.detector = detector
        self.stream_fps = stream_fps
        self.top_fps = min(stream_fps, camera.max_detect_fps)
        self.observers = list(observers)
        self._geometry: _Geometry | None = None
        self._last_due_s: float | None = None
        self.totals: Counter[CountKey] = Counter()
        self.movements = movements
        """Count movements between the lines (its gates); None: when there are two or more."""
        self.movement_totals = MovementTally()
        self.frames_analysed = 0
        self.frames_detected = 0
        self.aggregator = IntervalAggregator(
            camera.id,
            camera.interval_seconds,
            self._zone_summary(camera),
            health,
            config_version,
            camera.intersection,
        )

    @property
    def config_version(self) -> int | None:
        """The configuration version the open interval is counted with."""
        return self.aggregator.config_version

    def reconfigure(self, camera: Camera, config_version: int) -> list[IntervalReport]:
        """Count with another set-up from now on, without a restart.

        The interval in progress closes as partial; the new set-up counts from the next
        interval boundary, so every report is counted with exactly one configuration and
        none is reported twice (the stretch in between reads as reduced coverage).
        """
        self._close_movements()
        closed = self.aggregator.flush()
        self.aggregator = self.aggregator.successor(
            camera.interval_seconds, self._zone_summary(camera), config_version, camera.intersection
        )
        self.camera = camera
        self.top_fps = min(self.stream_fps, camera.max_detect_fps)
        self._geometry = None
        self._last_due_s = None
        return closed

    @property
    def analysed_fps(self) -> float:
        """The rate frames are analysed at now (the pacer's choice, at most ``top_fps``)."""
        return self._geometry.pacer.fps if self._geometry else self.top_fps

    @staticmethod
    def _zone_summary(camera: Camera) -> Callable[[str, list[ZoneSample]], ZoneRow]:
        zones = {zone.name: zone for zone in camera.zones}
        calibrated = camera.calibration is not None
        return lambda name, samples: summarise_zone(zones[name], samples, calibrated)

    def process(self, pending: PendingFrame) -> list[IntervalReport]:
        """Analyse the frame if it is due; returns reports of intervals that closed."""
        meta = pending.meta
        if not self._due(meta):
            return []
        geometry = self._geometry
        if geometry is None or geometry.size != (meta.width, meta.height):
            geometry = self._build_geometry(meta.width, meta.height)
        paced = geometry.pacer.due()
        try:
            frame = pending.decode()
        except SourceError as exc:
            log.warning("camera %s: frame %d skipped: %s", self.camera.id, meta.index, exc)
            return []
        geometry.probe.look(frame.image)
        news = geometry.probe.moved(geometry.known_boxes, geometry.unknown_boxes)
        if not paced:
            if not news:
                return []  # watched: nothing moves but the vehicles measured to move slowly
            geometry.pacer.alarm(meta.timestamp_s)
        detections = self._detect(frame, geometry)
        del frame  # pixels go no further than the detector and the motion probe
        reports = self.aggregator.add_frame(meta, detected=detections is not None)
        tracks = geometry.tracker.update(Detections(meta) if detections is None else detections)
        self._learn_motion(geometry, tracks, news)
        for observer in self.observers:
            observer.observe(tracks)
        passages = geometry.counter.passages(tracks)
        live = set(tracks.track_id.tolist()) | geometry.tracker.held_track_ids()
        geometry.counter.forget(live)
        samples = [meter.observe(tracks) for meter in geometry.zone_meters]
        self._record([p.crossing for p in passages if p.counted], samples)
        if geometry.movements is not None:
            self._record_movements(geometry.movements.update(tracks, passages, live))
        self.frames_analysed += 1
        return reports

    def _detect(self, frame: Frame, geometry: _Geometry) -> Detections | None:
        """The frame's vehicles, or None where the motion gate spares the detector: nothing
        moved since it last ran and it left no vehicle tracked, not even a tentative one."""
        if (
            self.camera.motion_gate
            and not geometry.tracker.held_track_ids()
            and not geometry.probe.moved()
        ):
            return None
        detections = self.detector.detect(frame, geometry.region)
        geometry.probe.remember()
        self.frames_detected += 1
        return detections

    @staticmethod
    def _learn_motion(geometry: _Geometry, tracks: Tracks, news: bool) -> None:
        """Let the pacer choose the next stride, and sort the vehicles held into those whose
        motion is known and the rest, for the motion probe."""
        geometry.pacer.observe(tracks, news)
        known = np.isin(tracks.track_id, list(geometry.pacer.measured))
        geometry.known_boxes = tracks.xyxy[known]
        geometry.unknown_boxes = np.concatenate(
            (tracks.xyxy[~known], geometry.tracker.unsettled_boxes())
        )

    def finish(self) -> list[IntervalReport]:
        """Close the open interval (marked partial) when the stream ends or the worker stops."""
        self._close_movements()
        return self.aggregator.flush()

    def _close_movements(self) -> None:
        """Count every vehicle the movements stage still holds into the open interval."""
        if self._geometry is not None and self._geometry.movements is not None:
            self._record_movements(self._geometry.movements.flush())

    def _record_movements(self, tally: MovementTally) -> None:
        self.aggregator.add_movements(tally)
        self.movement_totals.add(tally)

    def _due(self, meta: FrameMeta) -> bool:
        """Look at most ``max_detect_fps`` frames per stream second; the rest cost a grab.

        Half a stream frame of tolerance keeps jittery timestamps from skipping frames.
        """
        last = self._last_due_s
        threshold = 1 / self.top_fps - 0.5 / self.stream_fps
        if last is not None and meta.timestamp_s - last < threshold:
            return False
        self._last_due_s = meta.timestamp_s
        return True

    def _record(self, crossings: list[Crossing], samples: list[ZoneSample]) -> None:
        counted = self.camera.counted_classes()
        crossings = [c for c in crossings if c.vehicle_class in counted]
        self.aggregator.add_crossings(crossings)
        self.aggregator.add_zone_samples(samples)
        for crossing in crossings:
            self.totals[(crossing.line, crossing.direction, crossing.vehicle_class)] += 1

    def _build_geometry(self, width: int, height: int) -> _Geometry:
        self._close_movements()  # a camera back at another size: its tracks start afresh
        camera = self.camera
        movements = len(camera.lines) >= 2 if self.movements is None else self.movements
        scale = camera.scale(width, height)
        lines = [PixelLine.from_config(line, scale) for line in camera.lines]
        calibration = (
            GroundCalibration.from_config(camera.calibration, scale) if camera.calibration else None
        )
        points = [p for line in lines for p in (line.start, line.end)]
        points += [(x * scale[0], y * scale[1]) for zone in camera.zones for x, y in zone.polygon]
        region = Region.around(points, width, height)
        pacer = AnalysisPacer(self.top_fps, camera.min_analysis_fps)
        self._geometry = _Geometry(
            size=(width, height),
            region=region,
            counter=LineCounter(lines),
            movements=MovementTracker(
                camera.counted_classes(), view=(region.x1, region.y1, region.x2, region.y2)
            )
            if movements
            else None,
            zone_meters=[ZoneMeter(z, scale, calibration, camera.pcu) for z in camera.zones],
            tracker=VehicleTracker(self.top_fps),
            pacer=pacer,
            probe=MotionProbe(region, enabled=camera.motion_gate or pacer.max_stride > 1),
            known_boxes=np.zeros((0, 4), np.float32),
            unknown_boxes=np.zeros((0, 4), np.float32),
        )
        return self._geometry
