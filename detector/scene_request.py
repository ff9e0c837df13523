"""A scene map on request: learnt afresh when the API asks, sent once, never queued on disk.

While an editor's request is pending the heartbeat answers say ``scene_map_wanted``. The
worker then starts a fresh learning window, and once ``scene.learning_s`` of stream has been
analysed it posts the map; the API clears the request when it has it. A map the API could not
take is posted again with backoff; nothing of it is written anywhere.

The learner is touched by the camera thread only (it observes there, and is reset and read
between frames); the uplink thread only says what the API wants and takes the finished map.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

from contract.scene import SceneMap
from detector.backoff import Backoff
from detector.currency import Tracks
from detector.scene import SceneLearner

log = logging.getLogger(__name__)

State = Literal["idle", "asked", "learning", "ready", "sent"]


class SceneRequest:
    """One camera's scene-map request, from the API's ask to the map's delivery.

    It is the pipeline's track observer: tracks reach the learner only while it learns.
    """

    def __init__(
        self,
        learner: SceneLearner,
        camera_id: str,
        learning_s: float,
        *,
        backoff: Backoff | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._learner = learner
        self._camera_id = camera_id
        self._learning_s = learning_s
        self._backoff = backoff or Backoff(5.0, 600.0)
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._state: State = "idle"
        self._since: datetime | None = None
        self._map: SceneMap | None = None
        self._retry_at = float("-inf")

    @property
    def state(self) -> State:
        with self._lock:
            return self._state

    # --- uplink thread ------------------------------------------------------------------

    def wanted(self, wanted: bool) -> None:
        """The API's ``scene_map_wanted``: a request starts a fresh window (once); no request
        (answered, or withdrawn) ends any learning."""
        with self._lock:
            if wanted and self._state in ("idle", "sent"):
                self._state = "asked"
            elif not wanted:
                self._state, self._map = "idle", None

    def due(self) -> SceneMap | None:
        """The finished map, when it is time to post it (again)."""
        with self._lock:
            ready = self._state == "ready" and self._monotonic() >= self._retry_at
            return self._map if ready else None

    def settle(self, outcome: Literal["delivered", "rejected", "failed"]) -> None:
        """What became of the post: delivered or rejected ends it, failed tries again later."""
        with self._lock:
            if self._state != "ready":
                return
            if outcome == "failed":
                self._retry_at = self._monotonic() + self._backoff.next_delay()
                return
            self._backoff.reset()
            self._state, self._map = "sent", None

    # --- camera thread ------------------------------------------------------------------

    def observe(self, tracks: Tracks) -> None:
        """``TrackObserver``: learn from this frame's tracks while a window is open."""
        if self._since is not None:
            self._learner.observe(tracks)

    def between_frames(self, config_version: int | None) -> None:
        """Open the window the API asked for; close it once enough stream was analysed."""
        with self._lock:
            state = self._state
            if state == "asked":
                self._state = "learning"
        if state == "asked":
            self._learner.reset()
            self._since = self._clock()
            log.info("camera %s: learning a scene map as the API asked", self._camera_id)
        elif state == "learning" and self._learner.analysed_s >= self._learning_s:
            self._finish(config_version)
        elif state == "idle":
            self._since = None  # withdrawn while learning

    def restart_window(self) -> None:
        """The configuration switched (a new tracker, maybe a new region): a map learnt so far
        would mix two set-ups, so learning starts again."""
        if self._since is not None:
            self._learner.reset()
            self._since = self._clock()

    def _finish(self, config_version: int | None) -> None:
        assert self._since is not None
        scene_map = self._learner.snapshot(
            self._camera_id, self._since, self._clock(), config_version
        )
        self._since = None
        with self._lock:
            if self._state != "learning":
                return  # withdrawn meanwhile
            self._state, self._map, self._retry_at = "ready", scene_map, float("-inf")
        log.info(
            "camera %s: scene map learnt over %.0f s of stream (%d cells shown, %d withheld)",
            self._camera_id,
            scene_map.analysed_s,
            len(scene_map.cells),
            scene_map.withheld_cells,
        )
