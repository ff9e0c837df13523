"""Rate limits: ingest per device token, failed token checks per client IP, failed logins per
account and per client IP.

The counters live in a `limits` storage given by URI; in-memory by default, so one process
counts alone. A shared storage (``redis://...``) makes every API process count together
without changing any caller.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from api.settings import Settings

MEMORY_STORAGE = "memory://"


@dataclass
class RateLimits:
    """Moving-window limits; one instance per app."""

    per_token: RateLimitItem
    per_ip_failures: RateLimitItem
    login_failures: RateLimitItem
    limiter: MovingWindowRateLimiter

    @classmethod
    def from_settings(cls, settings: Settings, storage_uri: str = MEMORY_STORAGE) -> RateLimits:
        """Parse the settings' `limits` notation such as "600/minute"."""
        return cls(
            per_token=parse(settings.ingest_rate_limit),
            per_ip_failures=parse(settings.auth_failure_rate_limit),
            login_failures=parse(settings.login_rate_limit),
            limiter=MovingWindowRateLimiter(storage_from_string(storage_uri)),
        )

    def allow_token(self, token_id: str) -> bool:
        """Count one request for a token; False once it is over its limit."""
        return bool(self.limiter.hit(self.per_token, "token", token_id))

    def allow_failure(self, client_ip: str) -> bool:
        """Count one failed token check for an IP; False once it is over its limit."""
        return bool(self.limiter.hit(self.per_ip_failures, "auth-failure", client_ip))

    def retry_after_s(self, item: RateLimitItem) -> int:
        """Seconds of the limit's window: a safe Retry-After."""
        return int(item.get_expiry())

    def login_retry_after_s(self, email: str, client_ip: str) -> int | None:
        """Seconds until this account and IP may try a password again; None: go ahead.

        Only failures count, so the rightful user is locked out only while someone keeps
        guessing; the per-IP counter stops one client from spraying many accounts.
        """
        waits = [
            self._seconds_to_reset(key, value)
            for key, value in (("login-account", email), ("login-ip", client_ip))
            if not self.limiter.test(self.login_failures, key, value)
        ]
        return max(waits) if waits else None

    def count_login_failure(self, email: str, client_ip: str) -> None:
        """Count one failed login against the account and the IP."""
        self.limiter.hit(self.login_failures, "login-account", email)
        self.limiter.hit(self.login_failures, "login-ip", client_ip)

    def _seconds_to_reset(self, key: str, value: str) -> int:
        reset_at = self.limiter.get_window_stats(self.login_failures, key, value).reset_time
        return max(1, math.ceil(float(reset_at) - time.time()))
