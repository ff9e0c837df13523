"""The short CI version of bench/bench_load.py: 1,000 cameras, a minute each, then a storm.

Bounded in count and time, on both databases (PostgreSQL's raw tables partitioned), the new
path only; the long run, against the old path as its baseline in the same run, is
`python bench/bench_load.py` (docs/scale-out.md has the figures).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from bench.bench_load import run


@pytest.mark.timeout(240)
@pytest.mark.parametrize(
    ("backend", "workers"),
    [("sqlite", 1), pytest.param("postgresql", 2, marks=pytest.mark.postgres)],
)
def test_thousand_cameras_and_a_reconnect_storm_lose_nothing(backend: str, workers: int) -> None:
    # a thread of its own: browser tests earlier in the session may leave an event loop running
    with ThreadPoolExecutor(max_workers=1) as pool:
        result = pool.submit(
            run, backend, cameras=1000, minutes=1, backlog=2, workers=workers, concurrency=32
        ).result()
    print(json.dumps(result))
    assert result["database"]["lost"] == 0
    assert result["database"]["duplicates"] == 0
    assert result["database"]["stored"] == 3000
    for phase in ("steady", "storm"):
        assert result[phase]["error_rate"] == 0, result[phase]["statuses"]
        assert result[phase]["p99_ms"] < 30_000
