"""Every SensorThings read, the service root included, takes one of the app's read slots: with
none free it is told to come back (503, Retry-After) instead of taking a worker thread."""

from __future__ import annotations

import anyio
import pytest
from api_testkit import settings_for
from fastapi.testclient import TestClient

from api.app import create_app
from api.read_limits import ReadLimiter


@pytest.mark.parametrize("path", ["/sta/v1.1", "/sta/v1.1/Things"])
def test_a_sensorthings_read_waits_for_a_read_slot(database_url: str, path: str) -> None:
    app = create_app(settings_for(database_url))
    limiter = app.state.read_limiter = ReadLimiter(1, wait_s=0.2)
    with TestClient(app) as client:
        assert client.get(path).status_code == 200
        held = object()
        anyio.run(limiter.limiter.acquire_on_behalf_of, held)
        try:
            response = client.get(path)
        finally:
            limiter.limiter.release_on_behalf_of(held)
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"]
