"""Settings refuse published and guessable secrets outside development, name misspelt
variables, and refuse a map tile URL or proxy list that would weaken the headers or limits."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from api.settings import (
    DEVELOPMENT_SECRET,
    HOW_TO_GENERATE,
    KNOWN_SECRETS,
    Settings,
    tile_source,
)

REPO = Path(__file__).resolve().parents[2]
STRONG = "kY3v9Qw_Tn2LrX8bZp5MfC1hJs6Gd0Ve4NaUo7Ii-Rq"
"""Like the output of secrets.token_urlsafe(32)."""
HEX_128 = "5d6c43812e274074367aca9adc66dae4"
"""secrets.token_hex(16): 128 random bits written in hex."""
PASSPHRASE = "larch-quibble-ferment-oxbow-tundra-glimmer"
WEAK = {
    "the development default": DEVELOPMENT_SECRET,
    "the old compose example": "change-me-to-at-least-16-random-characters",
    "an example in other case": " Change-Me ",
    "16 spaces": " " * 16,
    "16 random characters": "Qw8-Lr2xZp5mFc1h",
    "one character repeated": "x" * 48,
    "a digit sequence": "0123456789" * 4,
    "a keyboard walk": "qwertyuiopasdfghjklzxcvbnm1234567890",
    "words and a year": "tallysecretpassword2024tallysecret",
}


@pytest.mark.parametrize("environment", ["test", "production"])
@pytest.mark.parametrize("secret", list(WEAK.values()), ids=list(WEAK))
def test_weak_secrets_are_refused_outside_development(environment: str, secret: str) -> None:
    with pytest.raises(ValidationError, match="TALLY_SECRET_KEY") as refused:
        Settings(environment=environment, secret_key=secret)
    assert HOW_TO_GENERATE in str(refused.value)


@pytest.mark.parametrize("environment", ["development", "test", "production"])
@pytest.mark.parametrize("secret", [STRONG, HEX_128, PASSPHRASE])
def test_strong_secrets_are_accepted(environment: str, secret: str) -> None:
    settings = Settings(environment=environment, secret_key=secret)
    assert settings.secret_key == secret


@pytest.mark.parametrize("secret", [DEVELOPMENT_SECRET, " " * 16, "x" * 48])
def test_development_takes_any_secret(secret: str) -> None:
    assert Settings(environment="development", secret_key=secret).secret_key == secret


@pytest.mark.parametrize(
    ("environment", "client_secret", "refused"),
    [
        ("production", "", False),  # no single sign-on, or a public client
        ("production", "secret", True),
        ("production", "change-me", True),
        ("production", "aaaaaaaaaaaaaaaaaaaaaaaa", True),
        ("test", "client-secret-1234", True),
        ("production", "GOCSPX-9fK2pLq7Wm3xZr8Tv1Nb5Hc", False),  # shaped like an IdP's
        ("production", STRONG, False),
        ("development", "secret", False),
    ],
)
def test_oidc_client_secret(environment: str, client_secret: str, refused: bool) -> None:
    def make() -> Settings:
        return Settings(
            environment=environment,
            secret_key=STRONG,
            oidc_client_secret=client_secret,
        )

    if refused:
        with pytest.raises(ValidationError, match="TALLY_OIDC_CLIENT_SECRET"):
            make()
    else:
        assert make().oidc_client_secret == client_secret


@pytest.mark.parametrize("known", sorted(KNOWN_SECRETS))
def test_every_known_secret_is_refused(known: str) -> None:
    with pytest.raises(ValidationError, match="published example"):
        Settings(environment="production", secret_key=known)


DOCUMENTED = re.compile(r"TALLY_SECRET_KEY[ \t]*[=:][ \t]*[\"']?(?P<value>[^\s\"'`]+)")
PLACEHOLDER = re.compile(r"^(\$|<|\.\.\.|\{)")


def documented_secrets() -> list[tuple[str, str]]:
    """Every literal TALLY_SECRET_KEY value in the docs, README, compose and docker files."""
    files = [
        *REPO.glob("*.md"),
        *(REPO / "docs").rglob("*.md"),
        *(p for p in (REPO / "docker").rglob("*") if p.is_file()),
        REPO / "docker-compose.yml",
        REPO / "Makefile",
    ]
    return [
        (str(path.relative_to(REPO)), match["value"])
        for path in files
        for match in DOCUMENTED.finditer(path.read_text(encoding="utf-8", errors="replace"))
        if not PLACEHOLDER.match(match["value"])
    ]


def test_no_documented_secret_would_be_accepted() -> None:
    """An example secret in the docs gets copied into production: each one is refused."""
    accepted = []
    for where, value in documented_secrets():
        try:
            Settings(environment="production", secret_key=value)
        except ValidationError:
            continue
        accepted.append((where, value))
    assert accepted == []


def test_the_compose_example_leaves_the_secret_empty() -> None:
    """Compose (`${TALLY_SECRET_KEY:?...}`) then refuses to start until one is generated."""
    example = (REPO / "docker" / "compose.env.example").read_text(encoding="utf-8")
    assert re.search(r"^TALLY_SECRET_KEY=$", example, re.MULTILINE)
    assert HOW_TO_GENERATE in example


@pytest.mark.parametrize(
    ("variable", "closest"),
    [
        ("TALLY_ENV", "TALLY_ENVIRONMENT"),
        ("TALLY_SECRET", "TALLY_SECRET_KEY"),
        ("TALLY_DATABASE_URI", "TALLY_DATABASE_URL"),
        ("tally_trusted_proxy", "TALLY_TRUSTED_PROXIES"),
        ("TALLY_ZZZZZZZZZZZZ", None),
    ],
)
def test_unknown_variables_are_named_with_the_closest_one(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    variable: str,
    closest: str | None,
) -> None:
    monkeypatch.setenv(variable, "production")
    with caplog.at_level(logging.WARNING, logger="api.settings"):
        settings = Settings()
    assert settings.environment == "development"  # ignored, as the warning says
    warnings = [r.getMessage() for r in caplog.records if variable in r.getMessage()]
    assert len(warnings) == 1
    assert ("did you mean" in warnings[0]) == (closest is not None)
    if closest is not None:
        assert closest in warnings[0]


@pytest.mark.parametrize(
    "variable", ["TALLY_ENVIRONMENT", "TALLY_SECRET_KEY", "TALLY_SHARED", "TALLY_DEVICE_TOKEN"]
)
def test_known_variables_are_not_warned_about(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, variable: str
) -> None:
    monkeypatch.setenv(variable, "development" if variable == "TALLY_ENVIRONMENT" else STRONG)
    with caplog.at_level(logging.WARNING, logger="api.settings"):
        Settings()
    assert [r for r in caplog.records if variable in r.getMessage()] == []


@pytest.mark.parametrize(
    ("template", "source"),
    [
        ("", None),
        ("/tiles/{z}/{x}/{y}.png", None),
        ("https://{s}.tile.openstreetmap.org/{z}/{x}/{y}.png", "https://*.tile.openstreetmap.org"),
        ("https://tiles.example.org:8443/{z}/{x}/{y}.png?k=1", "https://tiles.example.org:8443"),
        ("HTTP://Tiles.Example.org/{z}/{x}/{y}.png", "http://tiles.example.org"),
        ("https://a-{s}.basemaps.example/{z}/{x}/{y}.png", "https://*.basemaps.example"),
    ],
)
def test_tile_source(template: str, source: str | None) -> None:
    assert tile_source(template) == source
    assert Settings(map_tile_url=template).map_tile_url == template


@pytest.mark.parametrize(
    "template",
    [
        "https://tiles.example.org; script-src *",
        "https://tiles.example.org'/{z}",
        "javascript:alert(1)",
        "//tiles.example.org/{z}/{x}/{y}.png",
        "https://user@tiles.example.org/{z}",
        "https://{s}/{z}/{x}/{y}.png",
        "https://tiles.{s}/{z}/{x}/{y}.png",
        "data:image/png;base64,AAAA",
    ],
)
def test_a_tile_url_that_would_bend_the_policy_is_refused(template: str) -> None:
    with pytest.raises(ValidationError, match="map_tile_url"):
        Settings(map_tile_url=template)


def test_trusted_proxies_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALLY_TRUSTED_PROXIES", '["10.0.0.2", "172.16.0.0/12", "::1"]')
    assert Settings().trusted_proxies == ["10.0.0.2", "172.16.0.0/12", "::1"]
