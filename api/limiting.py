"""Rate limits: ingest per device token, failed token checks per client IP, failed logins per
account and per client IP.

Where the counters live: in this process's memory by default, so one process counts alone;
in Redis when ``TALLY_REDIS_URL`` is set, so every API replica counts together and two
replicas do not double a limit. Should Redis stop answering, each process counts in its own
memory again (as without Redis) and tries Redis again every few seconds: a limit never
vanishes and never locks anyone out, ingest goes on, the outage and the recovery are logged
once each and ``/healthz`` says "degraded" meanwhile.

Per process by nature, and so not here: the cap on expensive reads (api/read_limits.py) and
on concurrent Argon2 hashes (api/services/login.py) guard this process's threads and memory.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar
from urllib.parse import urlsplit

from limits import RateLimitItem, parse
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import MovingWindowRateLimiter
from redis import ConnectionPool
from redis.backoff import NoBackoff
from redis.retry import Retry

from api.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

REDIS_TIMEOUT_S = 0.5
"""A request waits at most about this long (twice, with the one retry) on an unreachable Redis."""
REDIS_RETRY_AFTER_S = 5.0
"""While Redis is down, a process tries it again this often (one request pays the wait)."""
SharedState = Literal["ok", "unavailable"]


def shared_limiter(settings: Settings) -> MovingWindowRateLimiter:
    """Moving windows in Redis (atomic Lua scripts), with short timeouts and one quick retry
    (a pooled connection that Redis closed on restart) instead of redis-py's long backoff."""
    pool = ConnectionPool.from_url(
        settings.redis_url,
        socket_timeout=REDIS_TIMEOUT_S,
        socket_connect_timeout=REDIS_TIMEOUT_S,
        retry=Retry(NoBackoff(), 1),
    )
    storage = RedisStorage(
        settings.redis_url,
        connection_pool=pool,
        key_prefix=settings.redis_key_prefix,
        wrap_exceptions=True,
    )
    return MovingWindowRateLimiter(storage)


@dataclass
class RateLimits:
    """Moving-window limits; one instance per app."""

    per_token: RateLimitItem
    per_ip_failures: RateLimitItem
    login_failures: RateLimitItem
    local: MovingWindowRateLimiter
    shared: MovingWindowRateLimiter | None = None
    shared_host: str = ""
    _retry_shared_at: float = field(default=0.0, init=False)
    _outage: bool = field(default=False, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimits:
        """Parse the settings' `limits` notation such as "600/minute"."""
        return cls(
            per_token=parse(settings.ingest_rate_limit),
            per_ip_failures=parse(settings.auth_failure_rate_limit),
            login_failures=parse(settings.login_rate_limit),
            local=MovingWindowRateLimiter(MemoryStorage()),
            shared=shared_limiter(settings) if settings.redis_url else None,
            shared_host=urlsplit(settings.redis_url).hostname or "",
        )

    def allow_token(self, token_id: str) -> bool:
        """Count one request for a token; False once it is over its limit."""
        return bool(self._count(lambda limiter: limiter.hit(self.per_token, "token", token_id)))

    def allow_failure(self, client_ip: str) -> bool:
        """Count one failed token check for an IP; False once it is over its limit."""
        return bool(
            self._count(
                lambda limiter: limiter.hit(self.per_ip_failures, "auth-failure", client_ip)
            )
        )

    def retry_after_s(self, item: RateLimitItem) -> int:
        """Seconds of the limit's window: a safe Retry-After."""
        return int(item.get_expiry())

    def login_retry_after_s(self, email: str, client_ip: str) -> int | None:
        """Seconds until this account and IP may try a password again; None: go ahead.

        Only failures count, so the rightful user is locked out only while someone keeps
        guessing; the per-IP counter stops one client from spraying many accounts.
        """

        def waits(limiter: MovingWindowRateLimiter) -> list[int]:
            return [
                seconds_to_reset(limiter, self.login_failures, key, value)
                for key, value in login_keys(email, client_ip)
                if not limiter.test(self.login_failures, key, value)
            ]

        found = self._count(waits)
        return max(found) if found else None

    def count_login_failure(self, email: str, client_ip: str) -> None:
        """Count one failed login against the account and the IP."""

        def hit_both(limiter: MovingWindowRateLimiter) -> None:
            for key, value in login_keys(email, client_ip):
                limiter.hit(self.login_failures, key, value)

        self._count(hit_both)

    def shared_state(self) -> SharedState | None:
        """Whether Redis answers now (None: no Redis configured, limits are per process)."""
        if self.shared is None:
            return None
        return "ok" if self.shared.storage.check() else "unavailable"

    def _count(self, operation: Callable[[MovingWindowRateLimiter], T]) -> T:
        """Run on the shared counters, or on this process's while Redis is unreachable."""
        if self.shared is not None and time.monotonic() >= self._retry_shared_at:
            try:
                result = operation(self.shared)
            except StorageError as exc:
                self._shared_failed(exc)
            else:
                if self._outage:
                    self._shared_recovered()
                return result
        return operation(self.local)

    def _shared_failed(self, exc: StorageError) -> None:
        with self._lock:
            self._retry_shared_at = time.monotonic() + REDIS_RETRY_AFTER_S
            if not self._outage:
                self._outage = True
                log.error(
                    "rate limits: Redis at %s is unavailable (%s); each API process counts "
                    "alone until it answers again",
                    self.shared_host,
                    type(exc.storage_error).__name__,
                )

    def _shared_recovered(self) -> None:
        with self._lock:
            if self._outage:
                self._outage = False
                log.warning(
                    "rate limits: Redis at %s is back; limits are shared again", self.shared_host
                )


def login_keys(email: str, client_ip: str) -> tuple[tuple[str, str], tuple[str, str]]:
    """The two counters of a login attempt; the e-mail as accounts are looked up (case and
    surrounding spaces ignored), so spelling variants of one account share its limit."""
    return ("login-account", email.strip().lower()), ("login-ip", client_ip)


def seconds_to_reset(
    limiter: MovingWindowRateLimiter, item: RateLimitItem, key: str, value: str
) -> int:
    reset_at = limiter.get_window_stats(item, key, value).reset_time
    return max(1, math.ceil(float(reset_at) - time.time()))
