"""Delivers queued interval reports to the central API, at least once.

Reports leave the outbox only when the API has answered for them: acknowledged (2xx),
kept in a different first version (409, acknowledged and counted), or rejected (any other
4xx that is about the report, such as 400 or 422: moved to the outbox's dead-letter table
with the status and the API's reason, counted, until a person re-sends it with
``python -m detector dead-letters``). Everything else (no network, timeouts, 408, 429, 5xx,
and 401/403/404/405, which say the token or the URL is wrong, not the report) keeps every
report and retries with backoff, so a report is never dropped here and a rejected one is never
retried in a loop. The device token is sent as a bearer header and never logged.

Every request body's bytes are counted as httpx sent them (``WireBytes``): what the API
counted for the camera (the public register shows it) can be checked against it, byte for byte.

The heartbeat's answer says what the API wants of the worker (``HeartbeatReply``): a newer
configuration to pull (``fetch_config``) or a fresh scene map (``send_scene_map``). Those go
through the same client, token and timeouts; nothing of them is queued in the outbox.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from contract import Heartbeat, IntervalReport, ReportBatch
from contract.scene import SceneMap
from contract.site import ConfigError
from contract.site import Uplink as UplinkConfig
from detector.backoff import Backoff
from detector.config import TOKEN_ENV
from detector.outbox import Outbox, OutboxError
from detector.source import scrub_credentials

logger = logging.getLogger(__name__)

REPORTS_PATH = "/api/v1/reports"
HEARTBEAT_PATH = "/api/v1/heartbeat"
CONFIG_PATH = "/api/v1/device/config"
SCENE_MAP_PATH = "/api/v1/device/scene-map"
FOLLOW_UP_S = 1.0
"""After the worker acted on a heartbeat's answer, the next heartbeat tells the API this soon."""
_TOKEN_PATTERN = re.compile(r"[\x21-\x7e]+")
"""Visible ASCII only: anything else could break or inject into the HTTP header."""
_MAX_JSON_NODES = 10_000
_REASON_CHARS = 300
_DETAIL_CHARS = 1000
_DETAIL_ERRORS = 20
_NOT_ABOUT_THE_REPORT = frozenset(
    {
        httpx.codes.UNAUTHORIZED,
        httpx.codes.FORBIDDEN,
        httpx.codes.NOT_FOUND,
        httpx.codes.METHOD_NOT_ALLOWED,
    }
)
"""Refusals of this device's token or of the URL: fixed in the config, the reports are fine."""
_TRANSIENT = frozenset({httpx.codes.REQUEST_TIMEOUT, httpx.codes.TOO_MANY_REQUESTS})

Settle = Callable[[IntervalReport, httpx.Response], None]
RequestKind = Literal["report", "heartbeat", "control"]
SceneMapOutcome = Literal["delivered", "rejected", "failed"]
"""Delivered; rejected as invalid (sending it again cannot help); failed (try again later)."""


@dataclass(slots=True)
class WireBytes:
    """Request-body bytes this uplink sent, as httpx encoded them.

    ``accepted_*`` count the requests the API stored (answered 2xx, or 409 for a batch whose new
    reports it stored): those are the bytes the API counts for the camera. ``sent`` counts every
    request that got any answer, control requests (configuration pulls, scene maps) included.
    """

    sent: int = 0
    requests: int = 0
    accepted_reports: int = 0
    accepted_heartbeats: int = 0

    @property
    def accepted(self) -> int:
        return self.accepted_reports + self.accepted_heartbeats

    def count(self, response: httpx.Response, kind: RequestKind) -> None:
        """Count the body of the request that `response` answers."""
        size = len(response.request.content)
        self.sent += size
        self.requests += 1
        if response.is_success or response.status_code == httpx.codes.CONFLICT:
            if kind == "heartbeat":
                self.accepted_heartbeats += size
            elif kind == "report":
                self.accepted_reports += size


@dataclass(frozen=True, slots=True)
class HeartbeatReply:
    """What the API asks of the worker in its answer to a heartbeat.

    Read leniently: an older API answers without these fields, and a malformed answer must
    not stop delivery; either reads as "nothing new".
    """

    config_version: int | None = None
    """The newest configuration version the API has for the camera."""
    scene_map_wanted: bool = False

    @classmethod
    def of(cls, response: httpx.Response) -> HeartbeatReply:
        try:
            body: object = response.json()
        except ValueError:
            return cls()
        if not isinstance(body, dict):
            return cls()
        version = body.get("config_version")
        usable = isinstance(version, int) and not isinstance(version, bool) and version >= 0
        return cls(version if usable else None, body.get("scene_map_wanted") is True)


def load_device_token(config: UplinkConfig, environ: Mapping[str, str] = os.environ) -> str:
    """The device token: ``$TALLY_DEVICE_TOKEN`` beats ``uplink.token_file``."""
    token = environ.get(TOKEN_ENV)
    origin = f"${TOKEN_ENV}"
    if token is None:
        if config.token_file is None:
            raise ConfigError(f"no device token: set {TOKEN_ENV} or uplink.token_file")
        origin = f"uplink.token_file {config.token_file}"
        try:
            token = config.token_file.read_text(encoding="utf-8")
        except (OSError, UnicodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise ConfigError(f"{origin}: cannot read: {reason}") from exc
    token = token.strip()
    if not token:
        raise ConfigError(f"{origin} is empty")
    if not _TOKEN_PATTERN.fullmatch(token):
        raise ConfigError(f"{origin}: the token must be printable ASCII without spaces")
    return token


class ReportUplink:
    """Sends outbox reports in batches and heartbeats; one instance per worker thread.

    ``deliver_once`` makes at most one request and returns how long to wait before the
    next call, so the protocol is testable without sleeping; ``run_forever`` loops it.
    """

    def __init__(
        self,
        outbox: Outbox,
        client: httpx.Client,
        *,
        api_url: str,
        token: str,
        batch_size: int = 100,
        backoff: Backoff | None = None,
        auth_backoff: Backoff | None = None,
        idle_poll_s: float = 1.0,
        heartbeat_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not api_url.startswith(("http://", "https://")):
            raise ConfigError(f"uplink.api_url must be http(s): {scrub_credentials(api_url)}")
        self._outbox = outbox
        self._client = client
        self._base_url = api_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self._batch_size = batch_size
        self._batch_limit = batch_size
        self._one_by_one = 0
        self._backoff = backoff or Backoff(1.0, 300.0)
        self._auth_backoff = auth_backoff or Backoff(300.0, 3600.0)
        self._idle_poll_s = idle_poll_s
        self._heartbeat_s = heartbeat_s
        self._clock = clock
        self.delivered = 0
        self.conflicts = 0
        self.dead_lettered = 0
        self.failures = 0
        self.wire_bytes = WireBytes()

    @classmethod
    def from_config(
        cls,
        config: UplinkConfig,
        outbox: Outbox,
        *,
        environ: Mapping[str, str] = os.environ,
        transport: httpx.BaseTransport | None = None,
    ) -> ReportUplink:
        """An uplink with its own HTTP client (close it with ``close()``); ``transport`` is the
        seam through which tests see every byte sent."""
        if config.api_url is None:
            raise ConfigError("uplink.api_url is not set")
        return cls(
            outbox,
            httpx.Client(timeout=config.timeout_s, transport=transport),
            api_url=config.api_url,
            token=load_device_token(config, environ),
            batch_size=config.batch_size,
            heartbeat_s=config.heartbeat_s,
        )

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:
        return f"ReportUplink({scrub_credentials(self._base_url)!r})"

    def deliver_once(self) -> float:
        """Send one batch of the oldest pending reports; seconds to wait before the next call."""
        batch = self._outbox.pending(1 if self._one_by_one else self._batch_limit)
        if not batch:
            return self._idle_poll_s
        body = ReportBatch(reports=batch).model_dump_json()
        try:
            response = self._client.post(
                self._base_url + REPORTS_PATH, content=body, headers=self._headers
            )
        except httpx.TransportError as exc:
            return self._retry_later(f"cannot reach the API ({type(exc).__name__})")
        self.wire_bytes.count(response, "report")
        return self._handle(batch, response)

    def send_heartbeat(self, heartbeat: Heartbeat) -> HeartbeatReply | None:
        """Post a heartbeat once; a lost one is not retried (the next one follows soon).
        The API's answer, or None when it did not take the heartbeat."""
        response = self._control("POST", HEARTBEAT_PATH, "heartbeat not sent", heartbeat)
        if response is None:
            return None
        if response.is_success:
            return HeartbeatReply.of(response)
        logger.warning("heartbeat refused: %s", _describe(response))
        return None

    def fetch_config(self) -> object | None:
        """GET the camera's newest configuration: the JSON the API answered (validated by the
        caller), or None when there is none to judge (no network, no configuration stored, any
        other answer); then the worker keeps its configuration and asks again later."""
        response = self._control("GET", CONFIG_PATH, "configuration not pulled")
        if response is None:
            return None
        if response.status_code == httpx.codes.OK:
            try:
                body: object = response.json()
            except ValueError:
                logger.warning("configuration not pulled: the answer is not JSON")
                return None
            return body
        logger.warning("configuration not pulled: %s", _describe(response))
        return None

    def send_scene_map(self, scene_map: SceneMap) -> SceneMapOutcome:
        """POST a scene map once; the caller decides when to try again."""
        response = self._control("POST", SCENE_MAP_PATH, "scene map not sent", scene_map)
        if response is None:
            return "failed"
        if response.is_success:
            return "delivered"
        status = response.status_code
        if response.is_client_error and status not in _NOT_ABOUT_THE_REPORT | _TRANSIENT:
            logger.error("scene map rejected: %s", _describe(response))
            return "rejected"
        logger.warning("scene map not delivered: %s", _describe(response))
        return "failed"

    def _control(
        self, method: str, path: str, failure: str, body: Heartbeat | SceneMap | None = None
    ) -> httpx.Response | None:
        """One request besides report delivery; None (logged as ``failure``) when the API
        cannot be reached."""
        try:
            response = self._client.request(
                method,
                self._base_url + path,
                content=body.model_dump_json() if body is not None else None,
                headers=self._headers,
            )
        except httpx.TransportError as exc:
            logger.warning("%s: cannot reach the API (%s)", failure, type(exc).__name__)
            return None
        self.wire_bytes.count(response, "heartbeat" if path == HEARTBEAT_PATH else "control")
        return response

    def run_forever(
        self,
        stop_event: threading.Event,
        heartbeat: Callable[[], Heartbeat] | None = None,
        replied: Callable[[HeartbeatReply], bool] | None = None,
    ) -> None:
        """Deliver until ``stop_event`` is set; heartbeats every ``heartbeat_s`` if given.

        ``replied`` acts on each heartbeat's answer (pull a configuration, post a scene map);
        when it returns True the next heartbeat follows after ``FOLLOW_UP_S``, so the API
        hears the outcome soon. It runs here, between deliveries, so it must not raise: a
        control step that does is logged and delivery goes on.
        """
        next_heartbeat = self._clock()
        while not stop_event.is_set():
            if heartbeat is not None and self._clock() >= next_heartbeat:
                reply = self.send_heartbeat(heartbeat())
                soon = reply is not None and replied is not None and _act(replied, reply)
                next_heartbeat = self._clock() + (FOLLOW_UP_S if soon else self._heartbeat_s)
            try:
                delay = self.deliver_once()
            except OutboxError as exc:
                delay = self._retry_later(f"outbox unusable: {exc}")
            if heartbeat is not None:
                delay = min(delay, max(0.0, next_heartbeat - self._clock()))
            stop_event.wait(delay)

    def _handle(self, batch: list[IntervalReport], response: httpx.Response) -> float:
        status = response.status_code
        if response.is_success:
            self._outbox.ack(r.report_id for r in batch)
            self.delivered += len(batch)
            self._settled(len(batch))
            self._backoff.reset()
            self._batch_limit = min(self._batch_size, self._batch_limit * 2)
            return 0.0
        if status == httpx.codes.CONFLICT:
            return self._settle_blamed(batch, response, self._accept_conflict)
        if status in _NOT_ABOUT_THE_REPORT:
            return self._wait_for_credentials(status)
        if status == httpx.codes.REQUEST_ENTITY_TOO_LARGE:
            return self._shrink_batch(batch, response)
        if response.is_client_error and status not in _TRANSIENT:
            return self._settle_blamed(batch, response, self._dead_letter)
        return self._retry_later(_describe(response), _retry_after(response))

    def _settle_blamed(
        self, batch: list[IntervalReport], response: httpx.Response, settle: Settle
    ) -> float:
        """Settle the reports the API blamed; if it blamed none, retry one by one to find them."""
        blamed = _blamed_reports(batch, response) or (batch if len(batch) == 1 else [])
        if not blamed:
            logger.warning(
                "HTTP %d for a batch of %d without naming a report; isolating one by one",
                response.status_code,
                len(batch),
            )
            self._one_by_one = len(batch)
            return 0.0
        for report in blamed:
            settle(report, response)
        self._settled(len(blamed))
        return 0.0

    def _accept_conflict(self, report: IntervalReport, response: httpx.Response) -> None:
        self._outbox.ack([report.report_id])
        self.conflicts += 1
        logger.warning(
            "report %s (%s %s): the API keeps a different first version: %s",
            report.report_id,
            report.camera_id,
            report.interval_start.isoformat(),
            _describe(response),
        )

    def _dead_letter(self, report: IntervalReport, response: httpx.Response) -> None:
        self._outbox.reject(report.report_id, response.status_code, _detail(response))
        self.dead_lettered += 1
        logger.error(
            "report %s (%s %s) rejected, moved to the dead-letter table (see python -m detector"
            " dead-letters): %s",
            report.report_id,
            report.camera_id,
            report.interval_start.isoformat(),
            _describe(response),
        )

    def _shrink_batch(self, batch: list[IntervalReport], response: httpx.Response) -> float:
        if len(batch) == 1:
            self._dead_letter(batch[0], response)
            self._settled(1)
        else:
            self._batch_limit = max(1, len(batch) // 2)
            logger.warning("HTTP 413: batch of %d too large, halving", len(batch))
        return 0.0

    def _wait_for_credentials(self, status: int) -> float:
        delay = self._auth_backoff.next_delay()
        self.failures += 1
        logger.error(
            "HTTP %d: the API refused this device's token; keeping %d report(s), "
            "retrying in %.0f s. Check the token (%s or uplink.token_file) and its camera.",
            status,
            self._outbox.backlog(),
            delay,
            TOKEN_ENV,
        )
        return delay

    def _retry_later(self, reason: str, at_least_s: float = 0.0) -> float:
        delay = max(self._backoff.next_delay(), min(at_least_s, self._backoff.max_s))
        self.failures += 1
        logger.warning("reports not delivered: %s; retrying in %.1f s", reason, delay)
        return delay

    def _settled(self, count: int) -> None:
        """Reports left the queue: success resets the credential backoff, isolation counts down."""
        self._auth_backoff.reset()
        self._one_by_one = max(0, self._one_by_one - count)


def _act(replied: Callable[[HeartbeatReply], bool], reply: HeartbeatReply) -> bool:
    """Run the control step; a bug in it must not stop the delivery of reports."""
    try:
        return replied(reply)
    except Exception:
        logger.exception("acting on the heartbeat's answer failed; reports are still delivered")
        return False


def _blamed_reports(batch: list[IntervalReport], response: httpx.Response) -> list[IntervalReport]:
    """Reports the error body names, by ``report_id``/``report_ids`` or a FastAPI ``loc``
    such as ``["body", "reports", 3, ...]``."""
    try:
        body: object = response.json()
    except ValueError:
        return []
    ids: set[str] = set()
    positions: set[int] = set()
    for node in _json_objects(body):
        named = node.get("report_ids")
        candidates = [node.get("report_id"), *(named if isinstance(named, list) else [])]
        ids.update(c for c in candidates if isinstance(c, str))
        location = node.get("loc")
        if isinstance(location, list) and location[:2] == ["body", "reports"]:
            positions.update(p for p in location[2:3] if isinstance(p, int))
    return [r for i, r in enumerate(batch) if r.report_id in ids or i in positions]


def _json_objects(body: object) -> Iterator[dict[str, Any]]:
    """Every JSON object inside ``body``, bounded so a hostile response cannot stall us."""
    stack = [body]
    for _ in range(_MAX_JSON_NODES):
        if not stack:
            return
        node = stack.pop()
        if isinstance(node, dict):
            yield node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _retry_after(response: httpx.Response) -> float:
    """Seconds from a ``Retry-After`` header (seconds form only), else 0."""
    try:
        return max(0.0, float(response.headers.get("Retry-After", "0")))
    except ValueError:
        return 0.0


def _detail(response: httpx.Response) -> str:
    """The API's ``detail`` (FastAPI's validation errors as ``location: message``), else the
    start of the body; what a person reads to fix the registration."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, list):
        errors = [e for e in detail[:_DETAIL_ERRORS] if isinstance(e, dict)]
        detail = "; ".join(
            f"{'.'.join(map(str, e['loc'] if isinstance(e.get('loc'), list) else []))}:"
            f" {e.get('msg', '')}"
            for e in errors
        )
    elif detail is not None and not isinstance(detail, str):
        detail = json.dumps(detail, sort_keys=True)
    if not detail:
        detail = response.text[:_DETAIL_CHARS] or response.reason_phrase
    return str(detail)[:_DETAIL_CHARS]


def _describe(response: httpx.Response) -> str:
    """Status and the start of the body, on one line, for logs and dead letters."""
    excerpt = " ".join(response.text[:_REASON_CHARS].split())
    return f"HTTP {response.status_code}: {excerpt}" if excerpt else f"HTTP {response.status_code}"
