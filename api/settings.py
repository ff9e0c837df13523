"""Runtime settings, read from ``TALLY_*`` environment variables.

The one secret (the pepper that token hashes are keyed with) has a development default; any
other environment refuses to start with it, so a production install cannot run with a
publicly known key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEVELOPMENT_SECRET = "tally-development-secret-do-not-use"  # noqa: S105 - the refused default


def default_database_url() -> str:
    """A SQLite file in the working directory: zero set-up for a first run."""
    return f"sqlite:///{Path.cwd() / 'tally.db'}"


class Settings(BaseSettings):
    """Everything an operator can tune; see docs/api-planner.md for the read side."""

    model_config = SettingsConfigDict(env_prefix="TALLY_", extra="ignore", frozen=True)

    environment: Literal["development", "test", "production"] = Field(
        default="development", title="Deployment environment"
    )
    secret_key: str = Field(
        default=DEVELOPMENT_SECRET, min_length=16, title="Pepper for token hashes"
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

    @model_validator(mode="after")
    def secret_is_not_default_outside_development(self) -> Self:
        """A public pepper would leave stolen token hashes open to offline guessing."""
        if self.environment != "development" and self.secret_key == DEVELOPMENT_SECRET:
            raise ValueError("TALLY_SECRET_KEY must be set to a private value outside development")
        return self
