"""The short CI version of bench/bench_load.py: 1,000 cameras, a minute each, then a storm.

Bounded in count and time; the long run (PostgreSQL with several uvicorn workers, more
minutes and bigger backlogs) is `python bench/bench_load.py`.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from bench.bench_load import run


@pytest.mark.timeout(240)
def test_thousand_cameras_and_a_reconnect_storm_lose_nothing() -> None:
    # a thread of its own: browser tests earlier in the session may leave an event loop running
    with ThreadPoolExecutor(max_workers=1) as pool:
        result = pool.submit(
            run, "sqlite", cameras=1000, minutes=1, backlog=2, workers=1, concurrency=32
        ).result()
    print(json.dumps(result))
    assert result["database"]["lost"] == 0
    assert result["database"]["duplicates"] == 0
    assert result["database"]["stored"] == 3000
    for phase in ("steady", "storm"):
        assert result[phase]["error_rate"] == 0, result[phase]["statuses"]
        assert result[phase]["p99_ms"] < 30_000
