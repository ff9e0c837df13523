"""Aggregation stage: crossings and zone samples -> clock-aligned IntervalReports.

Intervals are aligned to the wall clock (for files: the replayed stream's clock), so every
camera's minute 12:03 is the same minute. Each report says how much of its interval was
actually seen (``coverage``): a stream that was down for half a minute reports 0.5, and a
minute with no frames at all produces no report, so the API shows a gap, never a zero.

A movement belongs to the interval in which the movements stage closed its vehicle (shortly
after its track ended), its line crossings to the intervals they happened in: each is in
exactly one report, and over the intervals they reconcile (``detector.movements``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from contract import (
    CountRow,
    Health,
    IntervalReport,
    MovementRow,
    UnmatchedRow,
    VehicleClass,
    ZoneRow,
    align_interval_start,
    interval_report_id,
)
from contract.planning import Intersection
from detector.currency import Crossing, FrameMeta, MovementTally, ZoneSample

ZoneSummary = Callable[[str, list[ZoneSample]], ZoneRow]
MAX_FRAME_GAP_S = 2.0
"""A longer gap between analysed frames is an outage: only this much of it counts as seen,
and none of it counts towards the analysis rate."""


@dataclass(frozen=True, slots=True)
class HealthCounters:
    """Read at each interval close. ``reconnects`` and ``stalls`` are cumulative (the report
    carries the change); ``dropped_reports`` is what the outbox dropped since it was last
    read, and ``outbox_backlog`` the current backlog."""

    reconnects: int = 0
    stalls: int = 0
    dropped_reports: int = 0
    outbox_backlog: int = 0


@dataclass(slots=True)
class _OpenInterval:
    start: float
    partial: bool
    frames: int = 0
    detected: int = 0
    seen_s: float = 0.0
    paced_gaps: int = 0
    paced_s: float = 0.0
    counts: Counter[tuple[str, str, VehicleClass]] = field(default_factory=Counter)
    zone_samples: dict[str, list[ZoneSample]] = field(default_factory=dict)
    movements: MovementTally = field(default_factory=MovementTally)


class IntervalAggregator:
    """Accumulates one camera's interval and closes it when stream time moves past its end."""

    def __init__(
        self,
        camera_id: str,
        interval_seconds: int,
        summarise_zone: ZoneSummary,
        health: Callable[[], HealthCounters] = HealthCounters,
        config_version: int | None = None,
        intersection: Intersection | None = None,
    ) -> None:
        self.camera_id = camera_id
        self.interval_seconds = interval_seconds
        self.config_version = config_version
        self.intersection = intersection
        """Names the movements (left / through / right / u_turn); None: unnamed."""
        self._summarise_zone = summarise_zone
        self._health = health
        self._health_at_open = HealthCounters()
        self._open: _OpenInterval | None = None
        self._last_frame_s: float | None = None
        self._reported_until = float("-inf")

    def successor(
        self,
        interval_seconds: int,
        summarise_zone: ZoneSummary,
        config_version: int | None,
        intersection: Intersection | None = None,
    ) -> IntervalAggregator:
        """An aggregator for another configuration that goes on where this one stopped.

        Call after ``flush``. It counts from the first interval of its own length that starts
        after the last one reported, so no stretch of time is reported twice or with two
        configurations; the time in between is a coverage gap, not zero traffic. It knows
        the last frame seen, so that first interval is whole (not partial) if frames kept
        coming.
        """
        following = IntervalAggregator(
            self.camera_id,
            interval_seconds,
            summarise_zone,
            self._health,
            config_version,
            intersection,
        )
        following._health_at_open = self._health_at_open
        following._reported_until = self._reported_until
        following._last_frame_s = self._last_frame_s
        return following

    def add_frame(self, meta: FrameMeta, detected: bool = True) -> list[IntervalReport]:
        """Account one analysed frame (``detected``: the detector ran on it, rather than the
        motion gate finding nothing to detect); returns the reports of intervals it closed."""
        closed: list[IntervalReport] = []
        start = self._interval_start(meta.timestamp_s)
        if start < self._reported_until:
            return closed  # the clock went back, or a configuration switched: never twice
        if self._open is not None and start != self._open.start:
            closed.append(self._close(partial=start < self._open.start))
        if self._open is None:
            self._open = _OpenInterval(start, partial=self._last_frame_s is None)
        interval = self._open
        if self._last_frame_s is not None:
            since = meta.timestamp_s - max(self._last_frame_s, interval.start)
            interval.seen_s += min(max(0.0, since), MAX_FRAME_GAP_S)
            gap = meta.timestamp_s - self._last_frame_s
            if 0 < gap <= MAX_FRAME_GAP_S:
                interval.paced_gaps += 1
                interval.paced_s += gap
        interval.frames += 1
        interval.detected += detected
        self._last_frame_s = meta.timestamp_s
        return closed

    def add_crossings(self, crossings: list[Crossing]) -> None:
        """Count crossings into the open interval."""
        if self._open is None:
            return
        for crossing in crossings:
            self._open.counts[(crossing.line, crossing.direction, crossing.vehicle_class)] += 1

    def add_movements(self, tally: MovementTally) -> None:
        """Count the vehicles the movements stage closed into the open interval."""
        if self._open is not None:
            self._open.movements.add(tally)

    def add_zone_samples(self, samples: list[ZoneSample]) -> None:
        """Keep zone samples of the open interval (summarised at close)."""
        if self._open is None:
            return
        for sample in samples:
            self._open.zone_samples.setdefault(sample.zone, []).append(sample)

    def flush(self) -> list[IntervalReport]:
        """Close the open interval as partial (worker stopping or stream ended)."""
        if self._open is None:
            return []
        return [self._close(partial=True)]

    def _interval_start(self, timestamp_s: float) -> float:
        moment = datetime.fromtimestamp(timestamp_s, tz=UTC)
        return align_interval_start(moment, self.interval_seconds).timestamp()

    def _close(self, partial: bool) -> IntervalReport:
        interval = self._open
        assert interval is not None
        self._open = None
        self._reported_until = interval.start + self.interval_seconds
        health_now = self._health()
        before, self._health_at_open = self._health_at_open, health_now
        start = datetime.fromtimestamp(interval.start, tz=UTC)
        return IntervalReport(
            report_id=interval_report_id(self.camera_id, start),
            camera_id=self.camera_id,
            interval_start=start,
            interval_seconds=self.interval_seconds,
            partial=partial or interval.partial,
            coverage=round(min(1.0, interval.seen_s / self.interval_seconds), 4),
            frames_processed=interval.frames,
            fps=round(interval.frames / self.interval_seconds, 3),
            counts=[
                CountRow(line=line, direction=direction, vehicle_class=cls, count=n)
                for (line, direction, cls), n in sorted(interval.counts.items())
            ],
            zones=[
                self._summarise_zone(zone, samples)
                for zone, samples in sorted(interval.zone_samples.items())
            ],
            movements=[
                MovementRow(
                    origin=origin,
                    destination=destination,
                    movement=self.intersection.movement(origin, destination)
                    if self.intersection
                    else None,
                    vehicle_class=cls,
                    count=n,
                )
                for (origin, destination, cls), n in sorted(interval.movements.movements.items())
            ],
            unmatched=[
                UnmatchedRow(gate=gate, vehicle_class=cls, count=n)
                for (gate, cls), n in sorted(interval.movements.unmatched.items())
            ],
            health=Health(
                reconnects=max(0, health_now.reconnects - before.reconnects),
                stalls=max(0, health_now.stalls - before.stalls),
                dropped_reports=health_now.dropped_reports,
                outbox_backlog=health_now.outbox_backlog,
                analysed_fps=(
                    round(interval.paced_gaps / interval.paced_s, 3) if interval.paced_s else None
                ),
                detection_share=round(interval.detected / interval.frames, 4),
            ),
            config_version=self.config_version,
        )
