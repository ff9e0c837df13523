"""Runtime settings, read from ``TALLY_*`` environment variables.

Outside development the secrets must be private and hard to guess: a published example (the
development default, the values shown in the docs and compose files) or a short or patterned
value is refused at start-up, so a production install cannot run with a key an attacker can
look up or guess. An unknown ``TALLY_*`` variable (a typo such as ``TALLY_ENV``) is named in a
warning with the closest real one, instead of being ignored in silence.
"""

from __future__ import annotations

import difflib
import ipaddress
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, StringConstraints, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from zxcvbn import zxcvbn

log = logging.getLogger(__name__)

ENV_PREFIX = "TALLY_"
DEVELOPMENT_SECRET = "tally-development-secret-do-not-use"  # noqa: S105 - the refused default
KNOWN_SECRETS = frozenset(
    {
        DEVELOPMENT_SECRET,
        "change-me",
        "change-me-to-at-least-16-random-characters",  # the old docker/compose.env.example
    }
)
"""Secret values published with Tally; tests/api/test_settings.py finds any new one in the docs."""
HOW_TO_GENERATE = 'python -c "import secrets; print(secrets.token_urlsafe(48))"'
ZXCVBN_MAX_LENGTH = 72
"""zxcvbn refuses longer input; a secret whose first 72 characters are strong is strong."""
OTHER_VARIABLES = frozenset(
    {
        "TALLY_SHARED",  # Makefile, tally_demo and tests: where models and clips live
        "TALLY_DEVICE_TOKEN",  # detector: the worker's token
        "TALLY_MODEL",  # detector: the model weights
        "TALLY_MODEL_CACHE",  # detector: exported model copies
        "TALLY_DB_PASSWORD",  # docker-compose.yml
        "TALLY_API_PORT",  # docker-compose.yml
        "TALLY_MODELS_DIR",  # docker-compose.yml
        "TALLY_PROXY_ADDRESS",  # docker/Caddyfile: where the reverse proxy listens
        "TALLY_API_UPSTREAMS",  # docker/Caddyfile: the API replicas behind it
    }
)
"""``TALLY_*`` variables that belong to the other Tally programs, not to the API."""
TILE_HOST = re.compile(r"[a-z0-9.-]+(?::[0-9]{1,5})?")
SHA256_HEX = r"^[0-9a-f]{64}$"


def default_database_url() -> str:
    """A SQLite file in the working directory: zero set-up for a first run."""
    return f"sqlite:///{Path.cwd() / 'tally.db'}"


def secret_problem(value: str, min_length: int, min_guesses_log10: float) -> str | None:
    """Why ``value`` is not a usable secret (None when it is): published, short or guessable.

    Guessability is zxcvbn's estimate, which sees through words, dates, repeats, sequences and
    keyboard walks; a random string of n characters scores about 10^n guesses.
    """
    if value.strip().lower() in KNOWN_SECRETS:
        return "is a published example value"
    if len(value) < min_length:
        return f"is shorter than {min_length} characters"
    estimate = zxcvbn(value[:ZXCVBN_MAX_LENGTH], user_inputs=["tally", *KNOWN_SECRETS])
    if float(estimate["guesses_log10"]) < min_guesses_log10:
        return f"is too easy to guess (about 10^{estimate['guesses_log10']:.0f} guesses)"
    return None


def tile_source(template: str) -> str | None:
    """The CSP source that a map tile URL template loads from; None for our own origin.

    A ``{s}`` (or any placeholder) in the host becomes a ``*.`` wildcard for the labels that
    follow it: ``https://{s}.tile.openstreetmap.org/...`` is ``https://*.tile.openstreetmap.org``.
    Raises ValueError for anything that is neither a root-relative path nor a plain
    http(s) origin (a CSP source must not carry quotes, spaces or semicolons).
    """
    if not template or (template.startswith("/") and not template.startswith("//")):
        return None
    parts = urlsplit(template)
    labels = parts.netloc.lower().split(".")
    templated = [i for i, label in enumerate(labels) if "{" in label or "}" in label]
    if templated:
        labels = ["*", *labels[templated[-1] + 1 :]]
    host = ".".join(labels)
    if parts.scheme not in ("http", "https") or not TILE_HOST.fullmatch(host.removeprefix("*.")):
        raise ValueError(
            f"map_tile_url must be an http(s) URL template or a path on this server: {template!r}"
        )
    if host.startswith("*.") and "." not in host.removeprefix("*."):
        raise ValueError(f"map_tile_url: a placeholder may stand only for subdomains: {template!r}")
    return f"{parts.scheme}://{host}"


class Settings(BaseSettings):
    """Everything an operator can tune; see docs/api-planner.md for the read side."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    environment: Literal["development", "test", "production"] = Field(
        default="development", title="Deployment environment"
    )
    secret_key: str = Field(
        default=DEVELOPMENT_SECRET,
        min_length=1,
        max_length=1000,
        title="Pepper for token hashes (outside development: private, 32+ random characters)",
    )
    database_url: str = Field(default_factory=default_database_url, title="SQLAlchemy URL")
    max_body_bytes: int = Field(
        default=8 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024, title="Largest request body"
    )
    ingest_rate_limit: str = Field(
        default="600/minute", title="Ingest requests allowed per device token (limits syntax)"
    )
    auth_failure_rate_limit: str = Field(
        default="60/minute", title="Failed token checks allowed per client IP"
    )
    cors_origins: list[str] = Field(default_factory=list, title="Origins allowed by CORS")
    trusted_proxies: list[str] = Field(
        default_factory=list,
        title="Proxies (IPs or CIDRs) whose X-Forwarded-For is believed; empty: none",
    )
    session_idle_minutes: int = Field(
        default=30, ge=1, le=24 * 60, title="A login session ends after this long unused"
    )
    session_absolute_hours: int = Field(
        default=12, ge=1, le=30 * 24, title="A login session ends this long after sign-in"
    )
    login_rate_limit: str = Field(
        default="10/minute", title="Failed logins allowed per account and per client IP"
    )
    redis_url: str = Field(
        default="",
        max_length=500,
        pattern=r"^(|(redis|rediss|redis\+unix)://.+)$",
        title="Redis for the rate limits every API process shares (empty: each counts alone)",
    )
    redis_key_prefix: str = Field(
        default="tally",
        pattern=r"^[A-Za-z0-9_.:-]{1,64}$",
        title="Prefix of Tally's keys in Redis (one per installation sharing a server)",
    )
    oidc_issuer: str = Field(
        default="", max_length=500, title="OpenID Connect issuer URL (empty: no single sign-on)"
    )
    oidc_client_id: str = Field(default="", max_length=200, title="OIDC client id")
    oidc_client_secret: str = Field(default="", max_length=500, title="OIDC client secret")
    oidc_scopes: str = Field(default="openid email profile", title="OIDC scopes requested")
    oidc_role_claim: str = Field(
        default="tally_role", max_length=100, title="ID-token claim that names the Tally role"
    )
    oidc_default_role: Literal["", "viewer", "editor", "admin"] = Field(
        default="", title="Role when the claim is absent (empty: such users are refused)"
    )
    oidc_button_label: str = Field(
        default="Sign in with your city account", max_length=100, title="SSO button text"
    )
    ingest_max_age_days: int = Field(
        default=30, ge=1, le=3650, title="Oldest interval accepted, in days before server time"
    )
    ingest_max_ahead_s: int = Field(
        default=600, ge=0, le=86400, title="Latest interval end accepted, in seconds ahead"
    )
    raw_retention_days: int = Field(
        default=0,
        ge=0,
        le=36500,
        title="Raw per-interval rows are dropped this many days after their interval (0: kept"
        " forever); rollups stay. Longer than ingest_max_age_days",
    )
    read_concurrency: int = Field(
        default=4, ge=1, le=256, title="Expensive read queries run at once (others wait)"
    )
    open_max_rows: int = Field(
        default=200_000, ge=100, le=10_000_000, title="Most rows one open-data response holds"
    )
    map_tile_url: str = Field(
        default="", max_length=500, title="Map tile URL template (empty: plain background)"
    )
    map_tile_attribution: str = Field(default="", max_length=500, title="Map tile attribution")
    open_licence_id: str = Field(default="CC-BY-4.0", title="Open-data licence (SPDX id)")
    open_licence_url: str = Field(
        default="https://creativecommons.org/licenses/by/4.0/", title="Open-data licence URL"
    )
    open_attribution: str = Field(
        default="Contains traffic counts from Tally", title="Attribution statement"
    )
    open_publisher: str = Field(default="Tally", title="Publisher named in the catalogue")
    open_min_count: int = Field(
        default=0, ge=0, le=1000, title="Counts from 1 to this minus 1 are suppressed (0: off)"
    )
    open_cache_max_age_s: int = Field(default=300, ge=0, le=86400, title="Cache-Control max-age")
    register_language: Literal["en", "nl"] = Field(
        default="en", title="Language of the shipped register and sign texts (en, nl)"
    )
    register_operator: str = Field(
        default="", max_length=200, title="Who runs the cameras (empty: open_publisher)"
    )
    register_contact: str = Field(
        default="", max_length=300, title="Where to send questions or objections"
    )
    register_purpose: str = Field(
        default="", max_length=1000, title="Why the cameras count (empty: the shipped text)"
    )
    register_legal_basis: str = Field(
        default="", max_length=1000, title="Legal basis of the counting (empty: not stated)"
    )
    register_retention: str = Field(
        default="", max_length=1000, title="How long counts are kept (empty: the shipped text)"
    )
    register_public_url: str = Field(
        default="",
        max_length=500,
        title="Public base URL for the signs' QR codes (empty: the URL a request came in on)",
    )
    approved_software: list[Annotated[str, StringConstraints(pattern=SHA256_HEX)]] = Field(
        default_factory=list,
        max_length=1000,
        title="SHA-256 digests of approved worker code and model weights",
    )

    @field_validator("map_tile_url")
    @classmethod
    def map_tile_url_is_a_tile_source(cls, value: str) -> str:
        """The tile host goes into the Content-Security-Policy; refuse what cannot go there."""
        tile_source(value)
        return value

    @field_validator("register_public_url")
    @classmethod
    def register_public_url_is_http(cls, value: str) -> str:
        """The signs print it as a QR code: an http(s) origin, optionally with a path."""
        parts = urlsplit(value)
        if value and (parts.scheme not in ("http", "https") or not parts.netloc or parts.query):
            raise ValueError(f"register_public_url must be an http(s) URL: {value!r}")
        return value.rstrip("/")

    @field_validator("trusted_proxies")
    @classmethod
    def trusted_proxies_are_addresses(cls, value: list[str]) -> list[str]:
        """IPs or CIDRs only: a wildcard would let any client pick its own address."""
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"trusted_proxies: {entry!r} is not an IP address or CIDR"
                ) from None
        return value

    @model_validator(mode="after")
    def retention_outlasts_the_accept_window(self) -> Self:
        """A resend of a report whose raw row was dropped would be stored again and counted
        twice in the rollups: raw rows must outlive the window that ingest accepts."""
        if self.raw_retention_days and self.raw_retention_days <= self.ingest_max_age_days:
            raise ValueError(
                f"{ENV_PREFIX}RAW_RETENTION_DAYS ({self.raw_retention_days}) must be more than"
                f" {ENV_PREFIX}INGEST_MAX_AGE_DAYS ({self.ingest_max_age_days}), or 0 (keep)"
            )
        return self

    @model_validator(mode="after")
    def secrets_are_private_outside_development(self) -> Self:
        """A public or guessable pepper would leave stolen token hashes open to offline guessing;
        a guessable client secret would let anyone act as this app at the identity provider."""
        if self.environment == "development":
            return self
        checks = [("secret_key", self.secret_key, 32, 24.0)]
        if self.oidc_client_secret:
            checks.append(("oidc_client_secret", self.oidc_client_secret, 16, 16.0))
        for name, value, min_length, min_guesses_log10 in checks:
            problem = secret_problem(value, min_length, min_guesses_log10)
            if problem is not None:
                raise ValueError(
                    f"{ENV_PREFIX}{name.upper()} {problem}; outside development it must be a "
                    f"private random value, e.g. the output of {HOW_TO_GENERATE}"
                )
        return self

    @model_validator(mode="after")
    def warn_about_unknown_variables(self) -> Self:
        """A misspelt variable would otherwise leave its setting at the default unnoticed."""
        for name, closest in unknown_variables(os.environ):
            hint = f"; did you mean {closest}?" if closest else ""
            log.warning("unknown environment variable %s is ignored%s", name, hint)
        return self


def setting_variables() -> list[str]:
    """The environment variable of every setting."""
    return [f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields]


def unknown_variables(environ: Mapping[str, str]) -> list[tuple[str, str | None]]:
    """Each ``TALLY_*`` variable that no setting (or other Tally program) reads, with the
    closest real name, if one is close."""
    known = setting_variables()
    return [
        (name, next(iter(difflib.get_close_matches(name.upper(), known, n=1)), None))
        for name in sorted(environ)
        if name.upper().startswith(ENV_PREFIX) and name.upper() not in {*known, *OTHER_VARIABLES}
    ]
