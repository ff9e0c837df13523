"""A cap on expensive reads running at once, so a flood of them cannot starve the rest.

Planner and open-data handlers run in the worker thread pool; without a cap, a few dozen
long reads occupy every thread and even `/healthz` waits behind them (10-14 s in the flood
test). With the cap at most `read_concurrency` of them work at a time; the others wait on the
event loop, holding no thread and no connection, for up to `READ_WAIT_S`, then get a 503 with
Retry-After. A slot is held until the response is sent, streamed bodies included.

The cap is per process on purpose, also with several API replicas: what it protects is this
process's worker threads and database connections, and each replica has its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import Depends, HTTPException, Request, status

READ_WAIT_S = 10.0
RETRY_AFTER_S = 5


class ReadLimiter:
    """At most `total` expensive reads at once; a read waits at most `wait_s` for its turn."""

    def __init__(self, total: int, wait_s: float = READ_WAIT_S) -> None:
        self.limiter = anyio.CapacityLimiter(total)
        self.wait_s = wait_s

    async def acquire(self) -> object:
        """A slot (the token to release it with), or a 503 after waiting `wait_s`."""
        token = object()
        with anyio.move_on_after(self.wait_s):
            await self.limiter.acquire_on_behalf_of(token)
            return token
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "too many expensive reads at once; retry later",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )

    def release(self, token: object) -> None:
        self.limiter.release_on_behalf_of(token)


def read_limiter(request: Request) -> ReadLimiter:
    """The app's limiter, made on first use from its settings (one per app)."""
    state = request.app.state
    limiter: ReadLimiter | None = getattr(state, "read_limiter", None)
    if limiter is None:
        limiter = state.read_limiter = ReadLimiter(state.settings.read_concurrency)
    return limiter


async def read_slot(request: Request) -> AsyncIterator[None]:
    """Dependency: hold a slot from before the handler until the response has been sent."""
    limiter = read_limiter(request)
    token = await limiter.acquire()
    try:
        yield
    finally:
        limiter.release(token)


ReadSlotDep = Annotated[None, Depends(read_slot)]
