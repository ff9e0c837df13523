"""Group commit: requests that arrive while the database is busy share its next transaction.

Most of a small write's cost is fixed per statement and per transaction (building, sending and
committing it), not per row. Requests submitted while a group is being written wait for it to
finish and then go, all together, into the next one: a quiet server writes each request alone
and at once, a busy one writes few large groups. Nothing waits for a timer, so a group never
adds latency beyond the write in progress.

One group is in flight per process and event loop; its work runs in the thread pool. The work
function returns one outcome per item, a result or the exception that item's request should
raise, so one refused item never fails its neighbours; an exception the work itself raises (the
database is down) goes to every item of the group.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from starlette.concurrency import run_in_threadpool

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass
class Coalescer(Generic[Item, Result]):
    """Runs `work` on groups of submitted items, at most `max_items` (and `max_weight`) a
    group, one group at a time."""

    work: Callable[[Sequence[Item]], Sequence[Result | BaseException]]
    max_items: int = 64
    max_weight: int = 5000
    weight: Callable[[Item], int] = lambda _item: 1
    _pending: list[tuple[Item, asyncio.Future[Result]]] = field(default_factory=list)
    _drainer: asyncio.Task[None] | None = None
    groups: int = 0
    """Groups written so far (how well requests coalesce, for benchmarks and tests)."""

    async def submit(self, item: Item) -> Result:
        """The item's result once its group is written (or the exception it should raise)."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._drainer is None:
            self._drainer = asyncio.ensure_future(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                group = self._take_group()
                try:
                    outcomes = await run_in_threadpool(self.work, [item for item, _ in group])
                except BaseException as exc:  # handed to every waiting request
                    outcomes = [exc] * len(group)
                self.groups += 1
                for (_, future), outcome in zip(group, outcomes, strict=True):
                    settle(future, outcome)
        finally:
            self._drainer = None

    def _take_group(self) -> list[tuple[Item, asyncio.Future[Result]]]:
        """The oldest pending items, up to the group's limits (always at least one)."""
        taken, total = 0, 0
        for item, _ in self._pending:
            total += self.weight(item)
            if taken and (taken >= self.max_items or total > self.max_weight):
                break
            taken += 1
        group, self._pending = self._pending[:taken], self._pending[taken:]
        return group


def settle(future: asyncio.Future[Result], outcome: Result | BaseException) -> None:
    """Hand an outcome to a waiting request (one that went away has nobody to tell)."""
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
