"""Interval boundaries, coverage and clock jumps, driven by stream timestamps (no sleeping)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from contract import IntervalReport, ZoneRow, interval_report_id
from contract.planning import Intersection, Leg
from detector.aggregate import HealthCounters, IntervalAggregator
from detector.currency import Crossing, FrameMeta, MovementTally, ZoneSample

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC).timestamp()


def no_zones(name: str, samples: list[ZoneSample]) -> ZoneRow:
    raise AssertionError("no zones configured")


def feed(aggregator: IntervalAggregator, times: list[float]) -> list[IntervalReport]:
    reports: list[IntervalReport] = []
    for i, t in enumerate(times):
        reports += aggregator.add_frame(FrameMeta(i, t, 320, 240))
        aggregator.add_crossings([Crossing("main", "down", "car", t)])
    return reports


def frames(start: float, stop: float, fps: float = 10) -> list[float]:
    count = round((stop - start) * fps)
    return [start + i / fps for i in range(count)]


def test_intervals_are_clock_aligned_and_close_when_time_moves_on() -> None:
    aggregator = IntervalAggregator("cam-1", 60, no_zones)
    reports = feed(aggregator, frames(T0 + 30, T0 + 150))
    assert [r.interval_start.timestamp() for r in reports] == [T0, T0 + 60]
    first, second = reports
    assert first.partial
    assert not second.partial
    assert first.coverage == pytest.approx(0.5, abs=0.01)
    assert second.coverage == pytest.approx(1.0, abs=0.01)
    assert second.report_id == interval_report_id("cam-1", second.interval_start)
    assert sum(row.count for row in second.counts) == 600


def test_flush_marks_the_last_interval_partial() -> None:
    aggregator = IntervalAggregator("cam-1", 60, no_zones)
    feed(aggregator, frames(T0, T0 + 20))
    (last,) = aggregator.flush()
    assert last.partial
    assert last.coverage == pytest.approx(20 / 60, abs=0.01)
    assert aggregator.flush() == []


def test_an_outage_is_a_gap_not_zero_traffic() -> None:
    """Frames stop for 4 minutes: those minutes get no report; edges show reduced coverage."""
    aggregator = IntervalAggregator("cam-1", 60, no_zones)
    reports = feed(aggregator, frames(T0, T0 + 30) + frames(T0 + 270, T0 + 360))
    reports += aggregator.flush()
    starts = [r.interval_start.timestamp() - T0 for r in reports]
    assert starts == [0, 240, 300]
    assert reports[0].coverage == pytest.approx(0.5, abs=0.01)
    assert reports[1].coverage == pytest.approx(0.5, abs=0.05)


def test_clock_jump_back_never_reports_an_interval_twice() -> None:
    aggregator = IntervalAggregator("cam-1", 60, no_zones)
    reports = feed(aggregator, frames(T0, T0 + 125))
    reports += feed(aggregator, frames(T0 + 10, T0 + 200))  # the clock jumped back 2 minutes
    reports += aggregator.flush()
    ids = [r.report_id for r in reports]
    assert len(ids) == len(set(ids))
    starts = [r.interval_start.timestamp() for r in reports]
    assert starts == sorted(starts)


def test_clock_jump_forward_leaves_a_gap() -> None:
    aggregator = IntervalAggregator("cam-1", 60, no_zones)
    reports = feed(aggregator, frames(T0, T0 + 60) + frames(T0 + 3600, T0 + 3660))
    reports += aggregator.flush()
    assert [r.interval_start.timestamp() - T0 for r in reports] == [0, 3600]


def test_health_carries_reconnect_deltas_and_drops() -> None:
    readings = iter(
        [
            HealthCounters(reconnects=2, stalls=1, dropped_reports=3, outbox_backlog=7),
            HealthCounters(reconnects=5, stalls=1, dropped_reports=0, outbox_backlog=1),
        ]
    )
    aggregator = IntervalAggregator("cam-1", 60, no_zones, lambda: next(readings))
    reports = feed(aggregator, frames(T0, T0 + 121))
    assert [r.health.reconnects for r in reports] == [2, 3]
    assert [r.health.dropped_reports for r in reports] == [3, 0]
    assert [r.health.outbox_backlog for r in reports] == [7, 1]


def test_the_first_interval_after_a_reconfigure_is_whole_when_frames_kept_coming() -> None:
    """The successor knows the last frame seen: the stream never stopped, so its first
    interval is not partial and fully covered; the rest of the switched one is a gap."""
    aggregator = IntervalAggregator("cam-1", 60, no_zones, config_version=1)
    reports = feed(aggregator, frames(T0, T0 + 30))
    reports += aggregator.flush()
    following = aggregator.successor(60, no_zones, 2)
    reports += feed(following, frames(T0 + 30, T0 + 121))
    assert [(r.interval_start.timestamp() - T0, r.partial, r.config_version) for r in reports] == [
        (0, True, 1),
        (60, False, 2),
    ]
    assert reports[1].coverage == pytest.approx(1.0, abs=0.01)


def test_a_fresh_aggregator_still_marks_its_first_interval_partial() -> None:
    (first,) = feed(IntervalAggregator("cam-1", 60, no_zones), frames(T0, T0 + 61))
    assert first.partial


def test_movements_are_named_from_the_layout_and_kept_by_the_successor() -> None:
    junction = Intersection(
        legs=[Leg(gate="north", bearing_deg=0), Leg(gate="east", bearing_deg=90)]
    )
    tally = MovementTally(
        Counter({("north", "east", "car"): 2, ("east", "east", "bus"): 1}),
        Counter({("north", "car"): 3}),
    )
    aggregator = IntervalAggregator("cam-1", 60, no_zones, intersection=junction)
    feed(aggregator, frames(T0, T0 + 10))
    aggregator.add_movements(tally)
    (report,) = aggregator.flush()
    assert [
        (m.origin, m.destination, m.movement, m.vehicle_class, m.count) for m in report.movements
    ] == [
        ("east", "east", "u_turn", "bus", 1),
        ("north", "east", "left", "car", 2),
    ]
    assert [(u.gate, u.vehicle_class, u.count) for u in report.unmatched] == [("north", "car", 3)]
    unnamed = aggregator.successor(60, no_zones, 2)
    feed(unnamed, frames(T0 + 60, T0 + 70))
    unnamed.add_movements(tally)
    assert {m.movement for m in unnamed.flush()[0].movements} == {None}
    named = aggregator.successor(60, no_zones, 3, junction)
    feed(named, frames(T0 + 120, T0 + 130))
    named.add_movements(tally)
    assert {m.movement for m in named.flush()[0].movements} == {"u_turn", "left"}
