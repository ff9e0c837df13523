"""Remote configuration and scene maps on request, through the real uplink and a real API.

A real `python -m api serve` on loopback stores configuration versions (saved as an editor,
here with the admin token) and scene-map requests; the worker's side (uplink, ``RemoteConfig``,
``SceneRequest`` with the real ``SceneLearner``) pulls, checks, switches, caches and reports
back, and the API's planner endpoints show what the worker did.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from contract import VehicleClass
from contract.camera import CameraSetup
from contract.scene import SceneMap
from contract.site import Camera, SceneSettings, SiteConfig
from detector.backoff import Backoff
from detector.currency import FrameMeta, Tracks
from detector.outbox import Outbox
from detector.remote import (
    SITE_FILE_VERSION,
    ConfigCache,
    RemoteConfig,
    VersionedSetup,
    cache_path,
)
from detector.scene import SceneLearner
from detector.scene_request import SceneRequest, State
from detector.source import VideoSource
from detector.uplink import HeartbeatReply, ReportUplink
from detector.worker import CameraWorker
from tests.support.reports import make_report, streaming_heartbeat
from tests.support.tally_api import (
    TallyServer,
    add_site,
    free_port,
    register_camera,
    running_server,
)

pytestmark = pytest.mark.timeout(60)
SITE = "remote-site"
FRAME = (320, 240)
DETECTED: tuple[VehicleClass, ...] = ("car", "truck", "bus")
RELATIVE = {"lines": [{"name": "main", "points": [[0.0, 0.5], [1.0, 0.5]]}], "interval_seconds": 10}
DEVICE_NUMBERS = itertools.count(1)
VIDEO_FILE = Path(__file__)
"""A file the worker's source accepts; no test here reads a frame from it."""
MOVED = {"lines": [{"name": "moved", "points": [[0.5, 0.0], [0.5, 1.0]]}], "interval_seconds": 10}


def site_camera(camera_id: str) -> Camera:
    """The camera as the worker's site file has it."""
    return Camera.model_validate({"id": camera_id, "source": "unused.mp4", **RELATIVE})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TallyServer]:
    workdir = tmp_path_factory.mktemp("remote-api")
    with running_server(workdir) as api, api.admin() as admin:
        add_site(admin, SITE, "Remote configuration", 51.5, -0.12)
        yield api


@pytest.fixture
def admin(server: TallyServer) -> Iterator[httpx.Client]:
    with server.admin() as client:
        yield client


class Device:
    """One registered camera as its worker sees it: uplink, outbox, remote configuration."""

    def __init__(self, server: TallyServer, admin: httpx.Client, workdir: Path, name: str):
        self.camera_id = name
        token = register_camera(admin, SITE, name, 10)
        self.outbox = Outbox(workdir / "outbox.db")
        self.uplink = ReportUplink(
            self.outbox, httpx.Client(timeout=5), api_url=server.base_url, token=token
        )
        self.camera = site_camera(name)
        self.cache = ConfigCache(cache_path(self.outbox.path, name))
        self.remote = RemoteConfig(self.camera, SITE_FILE_VERSION, self.cache, DETECTED)

    def heartbeat(self) -> HeartbeatReply:
        beat = streaming_heartbeat(
            self.camera_id, self.remote.version, config_pull=self.remote.last_pull
        )
        reply = self.uplink.send_heartbeat(beat)
        assert reply is not None
        return reply

    def close(self) -> None:
        self.uplink.close()
        self.outbox.close()


@pytest.fixture
def device(server: TallyServer, admin: httpx.Client, tmp_path: Path) -> Iterator[Device]:
    device = Device(server, admin, tmp_path, f"device-{next(DEVICE_NUMBERS)}")
    yield device
    device.close()


def save(admin: httpx.Client, camera_id: str, setup: dict[str, Any]) -> int:
    """PUT a set-up as an editor; its new version."""
    response = admin.put(f"/api/v1/cameras/{camera_id}/config", json={"setup": setup})
    assert response.status_code == 201, response.text
    return int(response.json()["version"])


def config_view(admin: httpx.Client, camera_id: str) -> dict[str, Any]:
    response = admin.get(f"/api/v1/cameras/{camera_id}/config")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# --- configuration ------------------------------------------------------------------------


def test_a_saved_version_is_pulled_switched_cached_and_reported(
    admin: httpx.Client, device: Device
) -> None:
    assert device.heartbeat().config_version == 0  # nothing stored: no version to pull
    assert not device.remote.wants(0)
    version = save(admin, device.camera_id, MOVED)
    reply = device.heartbeat()
    assert reply.config_version == version == 2  # 1 is the registration
    assert device.remote.wants(version)
    assert device.remote.pull(device.uplink.fetch_config, version, FRAME)
    assert not device.remote.wants(version), "queued: not pulled twice"
    assert device.remote.version == 0, "the camera thread has not switched yet"

    switch = device.remote.take()
    assert switch is not None
    assert device.remote.take() is None
    assert (switch.version, [line.name for line in switch.camera.lines]) == (2, ["moved"])
    assert switch.camera.source == device.camera.source, "only the set-up is replaced"
    device.remote.applied(switch)
    assert device.remote.version == 2

    cached = json.loads(device.cache.path.read_text(encoding="utf-8"))
    assert cached == {
        "version": 2,
        "setup": CameraSetup.model_validate(MOVED).model_dump(mode="json"),
    }
    assert not device.cache.path.with_name(device.cache.path.name + ".tmp").exists()
    device.heartbeat()
    view = config_view(admin, device.camera_id)
    assert view["reported_version"] == 2
    assert view["config_pull"]["version"] == 2
    assert view["config_pull"]["status"] == "applied"
    assert view["config_pull"]["reason"] is None


REFUSALS = [
    pytest.param(
        {
            "reference_resolution": [1280, 720],
            "lines": [{"name": "wide", "points": [[0, 360], [1280, 360]]}],
            "interval_seconds": 10,
        },
        "reference_resolution 1280x720 has another aspect ratio than the stream's 320x240",
        id="pixels-of-another-aspect",
    ),
    pytest.param(
        {**RELATIVE, "classes": ["bicycle", "car"]},
        "classes bicycle are not detected by this worker's model",
        id="class-not-detected",
    ),
]


@pytest.mark.parametrize(("setup", "reason"), REFUSALS)
def test_a_version_that_does_not_fit_is_refused_reported_and_not_pulled_again(
    admin: httpx.Client, device: Device, setup: dict[str, Any], reason: str
) -> None:
    version = save(admin, device.camera_id, setup)
    assert device.remote.pull(device.uplink.fetch_config, version, FRAME)
    assert device.remote.take() is None
    assert device.remote.version == 0, "counting goes on with the last good one"
    assert not device.cache.path.exists()
    reply = device.heartbeat()
    assert not device.remote.wants(reply.config_version), "the refused version is not pulled again"
    pull = config_view(admin, device.camera_id)["config_pull"]
    assert (pull["version"], pull["status"]) == (version, "refused")
    assert reason in pull["reason"]
    assert len(pull["reason"]) <= 500

    fixed = save(admin, device.camera_id, MOVED)
    assert device.remote.wants(device.heartbeat().config_version), "a newer save is pulled"
    assert device.remote.pull(device.uplink.fetch_config, fixed, FRAME)
    switch = device.remote.take()
    assert switch is not None
    assert switch.version == fixed


def test_relative_coordinates_fit_any_stream(admin: httpx.Client, device: Device) -> None:
    version = save(admin, device.camera_id, MOVED)
    assert device.remote.pull(device.uplink.fetch_config, version, (1920, 1080))
    assert device.remote.take() is not None


def test_nothing_is_pulled_before_the_stream_shows_its_frame_size(
    admin: httpx.Client, device: Device
) -> None:
    version = save(admin, device.camera_id, MOVED)
    requests = device.uplink.wire_bytes.requests
    assert not device.remote.pull(device.uplink.fetch_config, version, None)
    assert device.uplink.wire_bytes.requests == requests, "no request made"
    assert device.remote.wants(version), "asked again at the next heartbeat"


def test_unreachable_api_keeps_the_last_good_configuration(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    dead = ReportUplink(
        outbox,
        httpx.Client(timeout=2),
        api_url=f"http://127.0.0.1:{free_port()}",
        token="device-token-never-logged",
    )
    camera = site_camera("cam-1")
    now = [0.0]
    remote = RemoteConfig(
        camera,
        3,
        ConfigCache(tmp_path / "cam-1.config.json"),
        DETECTED,
        backoff=Backoff(30.0, 600.0, jitter=0),
        monotonic=lambda: now[0],
    )
    with caplog.at_level(logging.WARNING):
        assert not remote.pull(dead.fetch_config, 4, FRAME)
    assert (remote.version, remote.last_pull, remote.take()) == (3, None, None)
    assert not remote.wants(4), "not at every heartbeat"
    now[0] += 30.0
    assert remote.wants(4), "tried again after a pause"
    assert "configuration not pulled: cannot reach the API (ConnectError)" in caplog.text
    assert "device-token-never-logged" not in caplog.text
    dead.close()
    outbox.close()


def test_no_configuration_stored_is_no_pull_and_no_404_loop(device: Device) -> None:
    """An API that announces a version it does not hand out (an older one announced the
    registry's revision) is asked again only after a growing pause, or for another version."""
    now = [0.0]
    remote = RemoteConfig(
        device.camera,
        SITE_FILE_VERSION,
        device.cache,
        DETECTED,
        backoff=Backoff(30.0, 600.0, jitter=0),
        monotonic=lambda: now[0],
    )
    assert device.uplink.fetch_config() is None  # 404: the worker keeps its site file's
    requests = device.uplink.wire_bytes.requests
    for pause in (30.0, 60.0, 120.0):
        assert remote.wants(2)
        assert not remote.pull(device.uplink.fetch_config, 2, FRAME)
        assert remote.last_pull is None
        for _ in range(5):  # heartbeats within the pause ask nothing
            assert not remote.wants(2)
        now[0] += pause
    assert device.uplink.wire_bytes.requests == requests + 3, "one request per pause"
    assert remote.wants(2)
    assert remote.pull(device.uplink.fetch_config, 2, FRAME) is False
    assert remote.wants(3), "a newly announced version is asked for at once"


ANSWERS = [
    pytest.param({"version": 5, "setup": MOVED}, "camera_id: Field required", id="no-camera"),
    pytest.param(
        {"camera_id": "cam-1", "version": 5, "setup": {**MOVED, "colour": "red"}},
        "setup.colour: Extra inputs are not permitted",
        id="newer-setup-field",
    ),
    pytest.param(
        {"camera_id": "cam-1", "version": 5, "setup": {**MOVED, "interval_seconds": 7}},
        "interval_seconds must be one of",
        id="invalid-setup",
    ),
    pytest.param(
        {"camera_id": "cam-2", "version": 5, "setup": MOVED},
        "the configuration is for camera cam-2, not cam-1",
        id="another-camera",
    ),
    pytest.param(["not", "a", "mapping"], "Input should be a valid dictionary", id="a-list"),
]


@pytest.mark.parametrize(("answer", "reason"), ANSWERS)
def test_an_answer_that_is_no_valid_configuration_is_refused(
    tmp_path: Path, answer: object, reason: str
) -> None:
    """What a newer or broken API might answer (the real one validates before it stores)."""
    camera = site_camera("cam-1")
    remote = RemoteConfig(camera, 1, ConfigCache(tmp_path / "cam-1.config.json"), DETECTED)
    assert remote.pull(lambda: answer, 5, FRAME)
    assert remote.take() is None
    assert remote.version == 1
    assert remote.last_pull is not None
    assert (remote.last_pull.version, remote.last_pull.status) == (5, "refused")
    assert remote.last_pull.reason is not None
    assert reason in remote.last_pull.reason
    assert not remote.wants(5)
    assert remote.wants(6)


CACHED = {**MOVED, "lines": [{"name": "cached", "points": [[0.5, 0.0], [0.5, 1.0]]}]}
SAVED = [MOVED, {**MOVED, "lines": [{"name": "newer", "points": [[0.4, 0.0], [0.4, 1.0]]}]}]
"""Saved as versions 2 and 3 (version 1 is the registration)."""


@pytest.mark.parametrize(
    ("saved", "cached", "expected_version", "expected_line"),
    [
        pytest.param(0, None, 0, "main", id="neither: the site file"),
        pytest.param(0, 4, 4, "cached", id="the API has none: the cache"),
        pytest.param(1, None, 2, "moved", id="no cache: the API's"),
        pytest.param(1, 2, 2, "cached", id="a tie: the cache"),
        pytest.param(2, 2, 3, "newer", id="the API's is newer"),
        pytest.param(1, 5, 5, "cached", id="the cache is newer"),
    ],
)
def test_at_start_the_newest_of_the_api_and_the_cache_counts(
    server: TallyServer,
    admin: httpx.Client,
    device: Device,
    saved: int,
    cached: int | None,
    expected_version: int,
    expected_line: str,
) -> None:
    """The site file's revision plays no part: a file edited for another camera (revision 9)
    must not make a worker count with its own old set-up under a version number of the API."""
    for setup in SAVED[:saved]:
        save(admin, device.camera_id, setup)
    if cached is not None:
        device.cache.store(VersionedSetup(version=cached, setup=CameraSetup.model_validate(CACHED)))
    config = SiteConfig.model_validate(
        {"site": SITE, "config_version": 9, "cameras": [device.camera.model_dump(mode="json")]}
    )
    worker = CameraWorker(
        device.camera,
        config,
        None,  # type: ignore[arg-type]  # no frames here: the start only
        device.outbox,
        VideoSource(str(VIDEO_FILE)),  # never read: only the start is run
        fetch_at_start=device.uplink.fetch_config,
        frame_size=FRAME,
    )
    worker.pull_at_start()
    assert worker.remote.version == expected_version
    assert [line.name for line in worker.remote.camera.lines] == [expected_line]
    assert worker.remote.camera.source == "unused.mp4"
    assert worker.heartbeat().config_version == expected_version


def test_a_restart_after_an_interval_change_reports_no_overlap(tmp_path: Path) -> None:
    """One run reported 60-s intervals up to 08:04; the next starts with a cached 300-s
    set-up. Its first interval, 08:00-08:05, would cover reported minutes again (the API
    refuses such an overlap): it is skipped, and counting goes on from 08:05."""
    outbox = Outbox(tmp_path / "outbox.db")
    minutes = [make_report(m) for m in range(1, 4)]
    camera = Camera.model_validate(
        {
            "id": "cam-1",
            "source": "unused.mp4",
            "lines": [{"name": "north", "points": [[0, 0.5], [1, 0.5]]}],
        }
    )
    config = SiteConfig(site="s", cameras=[camera])
    first = CameraWorker(camera, config, None, outbox, VideoSource(str(VIDEO_FILE)))  # type: ignore[arg-type]
    first.store(minutes)
    assert outbox.reported_until() == int(minutes[-1].interval_start.timestamp()) + 60
    outbox.close()

    outbox = Outbox(tmp_path / "outbox.db")
    again = CameraWorker(camera, config, None, outbox, VideoSource(str(VIDEO_FILE)))  # type: ignore[arg-type]
    overlapping, after = (
        make_report(m).model_copy(
            update={"interval_seconds": 300, "report_id": make_report(m).report_id}
        )
        for m in (0, 5)
    )
    again.store([overlapping, after])
    assert again.skipped_reports == 1
    queued = {r.report_id for r in outbox.pending(10)}
    assert overlapping.report_id not in queued
    assert after.report_id in queued
    outbox.close()


@pytest.mark.parametrize("content", [b"{not json", b'{"version": 9}', b"\xff\xfe"])
def test_an_unusable_cache_is_ignored_with_a_warning(
    tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "cam-1.config.json"
    path.write_bytes(content)
    camera = site_camera("cam-1")
    with caplog.at_level(logging.WARNING):
        remote = RemoteConfig.start(camera, ConfigCache(path), DETECTED)
    assert (remote.version, remote.camera) == (SITE_FILE_VERSION, camera)
    assert "is not valid; not used" in caplog.text


def test_the_cache_is_replaced_whole(tmp_path: Path) -> None:
    cache = ConfigCache(tmp_path / "cam-1.config.json")
    for version in (2, 3):
        cache.store(VersionedSetup(version=version, setup=CameraSetup.model_validate(MOVED)))
    loaded = cache.load()
    assert loaded is not None
    assert loaded.version == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cam-1.config.json"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"config_version": 7, "scene_map_wanted": True}, HeartbeatReply(7, True)),
        ({"camera_id": "c", "received_at": "x", "config_version": 3}, HeartbeatReply(3, False)),
        ({"config_version": "7", "scene_map_wanted": "yes"}, HeartbeatReply(None, False)),
        ({"config_version": True}, HeartbeatReply(None, False)),
        ({"config_version": -1}, HeartbeatReply(None, False)),
        ([1, 2], HeartbeatReply()),
        (None, HeartbeatReply()),
    ],
)
def test_heartbeat_answers_are_read_leniently(body: object, expected: HeartbeatReply) -> None:
    """An older API answers without the fields; a malformed answer is "nothing new"."""
    response = httpx.Response(200, json=body) if body is not None else httpx.Response(200)
    assert HeartbeatReply.of(response) == expected


# --- scene maps ---------------------------------------------------------------------------

LANES_X = (60.0, 160.0, 260.0)


def lane_traffic(seconds: float, fps: float = 5.0) -> Iterator[Tracks]:
    """Vehicles down three lanes, a new one per lane every 2 s, 4 s from top to bottom."""
    for index in range(int(seconds * fps)):
        now = 1_780_000_000.0 + index / fps
        ids, boxes = [], []
        for lane, x in enumerate(LANES_X):
            for vehicle in range(int(index / fps / 2) + 1):
                age = index / fps - vehicle * 2
                if 0 <= age < 4:
                    y = age / 4 * FRAME[1]
                    ids.append(1000 * lane + vehicle)
                    boxes.append([x - 10, y - 10, x + 10, y + 10])
        yield Tracks(
            meta=FrameMeta(index=index, timestamp_s=now, width=FRAME[0], height=FRAME[1]),
            track_id=np.array(ids, dtype=np.int64),
            xyxy=np.array(boxes, dtype=np.float32).reshape(-1, 4),
            vehicle_class=tuple("car" for _ in ids),
        )


def state(request: SceneRequest) -> State:
    """Read afresh each time (the camera and uplink steps move it)."""
    return request.state


def learn(request: SceneRequest, seconds: float) -> None:
    """The camera thread: between frames, then the frame's tracks."""
    for tracks in lane_traffic(seconds):
        request.between_frames(1)
        request.observe(tracks)
    request.between_frames(1)


def test_a_requested_scene_map_is_learnt_fresh_and_posted_once(
    admin: httpx.Client, device: Device
) -> None:
    settings = SceneSettings(learning_s=10, grid=16, k=3)
    request = SceneRequest(SceneLearner(settings), device.camera_id, settings.learning_s)
    learn(request, 5)
    assert device.heartbeat().scene_map_wanted is False
    assert state(request) == "idle"
    assert request.due() is None, "nothing learnt unasked"

    asked = admin.post(f"/api/v1/cameras/{device.camera_id}/scene-map/request")
    assert asked.status_code == 202, asked.text
    reply = device.heartbeat()
    assert reply.scene_map_wanted is True
    request.wanted(reply.scene_map_wanted)
    learn(request, 6)
    assert state(request) == "learning", "6 s of stream is less than learning_s"
    request.wanted(device.heartbeat().scene_map_wanted)  # still pending: no fresh window
    learn(request, 6)
    scene_map = request.due()
    assert scene_map is not None
    assert state(request) == "ready"
    assert scene_map.analysed_s >= settings.learning_s
    assert scene_map.config_version == 1
    assert scene_map.camera_id == device.camera_id
    assert scene_map.cells
    assert all(cell.n >= settings.k for cell in scene_map.cells)
    assert max(scene_map.cols, scene_map.rows) <= settings.grid

    request.wanted(device.heartbeat().scene_map_wanted)  # answered before the post: kept
    assert device.uplink.send_scene_map(scene_map) == "delivered"
    request.settle("delivered")
    assert request.due() is None
    request.wanted(device.heartbeat().scene_map_wanted)
    assert state(request) == "idle", "the API cleared the request: once per request"

    stored = admin.get(f"/api/v1/cameras/{device.camera_id}/scene-map")
    assert stored.status_code == 200, stored.text
    assert SceneMap.model_validate(stored.json()["scene_map"]) == scene_map
    assert stored.json()["requested_at"] is None


def test_a_scene_map_that_cannot_be_posted_is_retried_with_backoff(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    dead = ReportUplink(
        outbox, httpx.Client(timeout=2), api_url=f"http://127.0.0.1:{free_port()}", token="t"
    )
    now = [0.0]
    settings = SceneSettings(learning_s=10, grid=16, k=3)
    request = SceneRequest(
        SceneLearner(settings), "cam-1", settings.learning_s, monotonic=lambda: now[0]
    )
    request.wanted(True)
    learn(request, 11)
    scene_map = request.due()
    assert scene_map is not None
    request.settle(dead.send_scene_map(scene_map))
    assert request.due() is None, "not before the backoff delay"
    now[0] += 600.0
    assert request.due() == scene_map, "the same map again, never a second window"
    assert outbox.backlog() == 0, "a scene map never goes into the outbox"
    request.settle("rejected")
    assert request.due() is None
    assert state(request) == "sent"
    dead.close()
    outbox.close()


def test_a_withdrawn_request_ends_the_learning(tmp_path: Path) -> None:
    settings = SceneSettings(learning_s=10, grid=16, k=3)
    request = SceneRequest(SceneLearner(settings), "cam-1", settings.learning_s)
    request.wanted(True)
    learn(request, 4)
    request.wanted(False)
    learn(request, 8)
    assert state(request) == "idle"
    assert request.due() is None


def test_a_configuration_switch_restarts_the_learning_window() -> None:
    """A map must describe one set-up: after a switch the learner starts over, so the map is
    ready only a whole learning window after it."""
    settings = SceneSettings(learning_s=10, grid=16, k=3)
    learner = SceneLearner(settings)
    request = SceneRequest(learner, "cam-1", settings.learning_s)
    request.wanted(True)
    learn(request, 7)
    assert learner.analysed_s > 5
    request.restart_window()
    assert learner.analysed_s == 0
    learn(request, 7)
    assert state(request) == "learning", "7 s after the switch is not yet a 10 s window"
    learn(request, 4)
    assert state(request) == "ready"
