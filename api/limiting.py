"""Rate limits on ingest (per device token) and on failed token checks (per client IP)."""

from __future__ import annotations

from dataclasses import dataclass, field

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter


@dataclass
class RateLimits:
    """In-process moving-window limits; one instance per app."""

    per_token: RateLimitItem
    per_ip_failures: RateLimitItem
    limiter: MovingWindowRateLimiter = field(
        default_factory=lambda: MovingWindowRateLimiter(MemoryStorage())
    )

    @classmethod
    def from_strings(cls, per_token: str, per_ip_failures: str) -> RateLimits:
        """Parse `limits` notation such as "600/minute"."""
        return cls(per_token=parse(per_token), per_ip_failures=parse(per_ip_failures))

    def allow_token(self, token_id: str) -> bool:
        """Count one request for a token; False once it is over its limit."""
        return bool(self.limiter.hit(self.per_token, "token", token_id))

    def allow_failure(self, client_ip: str) -> bool:
        """Count one failed token check for an IP; False once it is over its limit."""
        return bool(self.limiter.hit(self.per_ip_failures, "auth-failure", client_ip))

    def retry_after_s(self, item: RateLimitItem) -> int:
        """Seconds of the limit's window: a safe Retry-After."""
        return int(item.get_expiry())
