"""The ingest fast path: the before-body gate's memory of live tokens never outlives a
revocation, an expiry or its bounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from api_testkit import batch, make_report, register
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.db import session_scope
from api.services.tokens import RecentTokens, hash_token, revoke_token

NOW = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)


def test_a_token_revoked_after_use_is_refused_at_once(client: TestClient, app: FastAPI) -> None:
    reg = register(app.state.settings)
    first = client.post(
        "/api/v1/reports", json=batch(make_report(reg.camera, NOW)), headers=reg.auth
    )
    assert first.status_code == 200, first.text
    token_hash = hash_token(app.state.settings.secret_key, reg.token)
    assert token_hash in app.state.recent_tokens
    with session_scope(app.state.session_factory) as session:
        assert revoke_token(session, reg.token_id)
    later = make_report(reg.camera, NOW + timedelta(minutes=1))
    response = client.post("/api/v1/reports", json=batch(later), headers=reg.auth)
    assert response.status_code == 401, response.text
    assert token_hash not in app.state.recent_tokens


@pytest.mark.parametrize(
    ("expires_in", "remembered"),
    [(None, True), (timedelta(hours=1), True), (timedelta(seconds=-1), False)],
)
def test_a_token_is_remembered_no_longer_than_it_lives(
    expires_in: timedelta | None, remembered: bool
) -> None:
    recent = RecentTokens()
    recent.remember("h", datetime.now(UTC) + expires_in if expires_in is not None else None)
    assert ("h" in recent) is remembered


def test_the_memory_is_bounded() -> None:
    recent = RecentTokens(max_entries=3)
    for n in range(10):
        recent.remember(f"h{n}", None)
    assert "h9" in recent
    assert sum(f"h{n}" in recent for n in range(10)) <= 3
