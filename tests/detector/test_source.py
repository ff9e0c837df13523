"""VideoSource against a real clip and real loopback MJPEG cameras that die, hang and return."""

from __future__ import annotations

import itertools
import logging
import random
import re
import threading
import time
from pathlib import Path

import pytest

from contract import StreamState
from detector.backoff import Backoff
from detector.source import (
    PendingFrame,
    SourceError,
    VideoSource,
    classify_source,
)
from tests.support.mjpeg import MjpegServer
from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(30)


def fast_backoff() -> Backoff:
    return Backoff(0.05, 0.2, jitter=0.0, rng=random.Random(0))


class BackgroundSource:
    """Iterates a VideoSource on its own thread, recording frames and state changes."""

    def __init__(self, uri: str, **options: object) -> None:
        self.states: list[StreamState] = []
        self.frames: list[PendingFrame] = []
        self.decoded_shapes: list[tuple[int, ...]] = []
        self.source = VideoSource(
            uri,
            backoff=fast_backoff(),
            on_state_change=lambda state, _t: self.states.append(state),
            **options,  # type: ignore[arg-type]
        )
        self._thread = threading.Thread(target=self._consume, daemon=True)
        self._thread.start()

    def _consume(self) -> None:
        for pending in self.source:
            self.frames.append(pending)
            if pending.meta.index % 10 == 0:
                self.decoded_shapes.append(pending.decode().image.shape)

    def stop(self, within_s: float = 2.0) -> None:
        """Stop the source; the worker thread must finish promptly, even mid-stall."""
        self.source.stop()
        self._thread.join(within_s)
        assert not self._thread.is_alive(), "the source did not stop"


@pytest.mark.parametrize(
    ("uri", "kind"),
    [
        ("0", "device"),
        ("12", "device"),
        ("rtsp://cam/live", "stream"),
        ("HTTPS://cam/mjpg", "stream"),
        ("/data/clip.avi", "file"),
        ("clip.mp4", "file"),
    ],
)
def test_classify_source(uri: str, kind: str) -> None:
    assert classify_source(uri) == kind


def test_file_replays_every_frame_on_the_stream_clock(motorway_clip: Path) -> None:
    changes: list[tuple[StreamState, float]] = []
    source = VideoSource(
        str(motorway_clip),
        start_epoch=1_700_000_000.0,
        on_state_change=lambda state, t: changes.append((state, t)),
    )
    metas = []
    for pending in source:
        metas.append(pending.meta)
        if pending.meta.index in (0, 749):
            frame = pending.decode()
            assert frame.image.shape == (240, 320, 3)
            assert frame.meta == pending.meta
    assert len(metas) == 750
    assert [m.index for m in metas] == list(range(750))
    assert all(m.timestamp_s == 1_700_000_000.0 + m.index / 25 for m in metas)
    assert {(m.width, m.height) for m in metas} == {(320, 240)}
    assert source.state == "ended"
    assert source.fps == 25.0
    assert not source.is_live
    assert changes == [("streaming", 1_700_000_000.0), ("ended", 1_700_000_000.0 + 750 / 25)]


def test_decode_is_refused_once_the_next_frame_is_grabbed(motorway_clip: Path) -> None:
    frames = iter(VideoSource(str(motorway_clip), start_epoch=0.0))
    first = next(frames)
    next(frames)
    with pytest.raises(SourceError, match="before the next frame"):
        first.decode()


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="video file not found"):
        VideoSource(str(tmp_path / "nope.mp4"))


def test_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video")
    with pytest.raises(SourceError, match="cannot open video file"):
        list(VideoSource(str(junk)))


def test_live_stream_uses_the_injected_clock(mjpeg_server: MjpegServer) -> None:
    ticks = iter(range(1000, 10_000))
    source = VideoSource(mjpeg_server.url(), clock=lambda: float(next(ticks)))
    frames = []
    for pending in source:
        frames.append(pending)
        if len(frames) == 5:
            decoded = pending.decode()
            source.stop()
    stamps = [f.meta.timestamp_s for f in frames]
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == 5
    assert all(1000 <= s < 10_000 for s in stamps)
    assert decoded.image.shape == (120, 160, 3)
    assert (frames[0].meta.width, frames[0].meta.height) == (160, 120)
    assert source.is_live
    assert source.state == "ended"


def test_stream_reconnects_when_the_camera_comes_back(mjpeg_server: MjpegServer) -> None:
    run = BackgroundSource(mjpeg_server.url(), stall_timeout_s=2.0)
    wait_until(lambda: len(run.frames) >= 10, 10, "first frames")
    mjpeg_server.stop()
    wait_until(lambda: run.source.state == "reconnecting", 5, "reconnecting")
    time.sleep(0.5)  # several refused reopen attempts with backoff
    assert run.source.reconnects == 1
    frames_while_down = len(run.frames)
    mjpeg_server.start()
    wait_until(lambda: len(run.frames) >= frames_while_down + 10, 10, "frames after restart")
    run.stop()

    assert run.states == ["streaming", "reconnecting", "streaming", "ended"]
    assert run.source.reconnects == 1
    assert run.source.stalls == 0
    indexes = [f.meta.index for f in run.frames]
    assert indexes == list(range(len(indexes)))
    assert run.decoded_shapes
    assert set(run.decoded_shapes) == {(120, 160, 3)}


def test_watchdog_abandons_a_stream_that_hangs_mid_stream() -> None:
    with MjpegServer(behaviour="hang_after_frames", hang_after=5) as server:
        run = BackgroundSource(server.url(), stall_timeout_s=0.5)
        wait_until(lambda: len(run.frames) >= 5, 10, "frames before the hang")
        hang_started = time.monotonic()
        wait_until(lambda: run.source.stalls >= 1, 3, "the watchdog")
        assert time.monotonic() - hang_started < 0.5 + 1.0
        wait_until(lambda: server.connections >= 2, 5, "a reconnect after the stall")
        run.stop()
    assert run.states[:3] == ["streaming", "stalled", "reconnecting"]
    assert run.states[-1] == "ended"
    assert run.source.reconnects >= 1


def test_a_server_that_never_answers_does_not_hang_the_worker() -> None:
    with MjpegServer(behaviour="silent") as server:
        run = BackgroundSource(server.url(), stall_timeout_s=0.5, open_timeout_s=0.5)
        wait_until(lambda: server.connections >= 2, 8, "repeated open attempts")
        assert run.source.state == "reconnecting"
        assert run.frames == []
        run.stop()
    assert run.states == ["reconnecting", "ended"]


def test_credentials_never_reach_logs_or_repr(
    caplog: pytest.LogCaptureFixture, mjpeg_server: MjpegServer
) -> None:
    url = mjpeg_server.url("user:secret")
    mjpeg_server.stop()  # nothing listens: every attempt is refused and logged
    caplog.set_level(logging.DEBUG, logger="detector.source")
    run = BackgroundSource(url, open_timeout_s=1.0)
    wait_until(lambda: caplog.text.count("reconnecting in") >= 3, 5, "reconnect log lines")
    text_seen = [caplog.text, repr(run.source)]
    run.stop()
    text_seen.append(caplog.text)
    assert f"http://***@127.0.0.1:{mjpeg_server.port}/stream" in caplog.text
    delays = re.findall(r"reconnecting in ([0-9.]+) s", caplog.text)
    assert delays[:3] == ["0.05", "0.10", "0.20"]  # exponential, capped by fast_backoff()
    assert run.source.reconnects == 1
    for text in text_seen:
        assert "secret" not in text
        assert "user:" not in text


def test_a_file_can_be_replayed_on_one_running_clock(motorway_clip: Path) -> None:
    source = VideoSource(str(motorway_clip), start_epoch=1_700_000_000.0, plays=2)
    stamps = [pending.meta.timestamp_s for pending in source]
    assert len(stamps) == 1500
    assert stamps[-1] == pytest.approx(1_700_000_000.0 + 1499 / 25)
    assert all(b > a for a, b in itertools.pairwise(stamps))
    assert source.state == "ended"
