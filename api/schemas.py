"""Request and response bodies of the API (the device payloads are `contract`'s models)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from contract import GEOMETRIC_DIRECTIONS, INTERVAL_CHOICES_S, GeometricDirection, Label

CameraStatus = Literal["online", "offline", "never"]
Text = Annotated[str, StringConstraints(pattern=r"^[^\x00]*$")]
"""Free text: anything but NUL, which PostgreSQL cannot store (it was a 500 there)."""


class ApiModel(BaseModel):
    """Strict base for request bodies: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid")


class SiteIn(ApiModel):
    """A site to register."""

    id: Label = Field(title="Site id")
    name: Text = Field(min_length=1, max_length=200, title="Display name")
    road: Text = Field(default="", max_length=200, title="Road name or number")
    lat: float = Field(ge=-90, le=90, title="Latitude (WGS 84)")
    lon: float = Field(ge=-180, le=180, title="Longitude (WGS 84)")
    timezone: Text = Field(default="UTC", max_length=64, title="IANA timezone of the site")
    description: Text = Field(default="", max_length=2000, title="Free text")
    public: bool = Field(default=False, title="Publish in the open-data feeds")

    @field_validator("timezone")
    @classmethod
    def timezone_exists(cls, value: str) -> str:
        """Buckets align to the site's clock, so the zone must be known."""
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA timezone {value!r}") from exc
        return value


class LineIn(ApiModel):
    """A count line and the labels of its crossing directions."""

    name: Label = Field(title="Line name")
    direction_names: dict[GeometricDirection, Label] = Field(
        default_factory=dict, title="Labels for geometric directions (others keep their name)"
    )

    def directions(self) -> dict[str, str]:
        """All four geometric directions with the label the worker reports for each."""
        return {g: self.direction_names.get(g, g) for g in GEOMETRIC_DIRECTIONS}


class ZoneIn(ApiModel):
    """A congestion zone."""

    name: Label = Field(title="Zone name")
    lanes: int = Field(default=1, ge=1, le=12, title="Lanes")
    length_m: float | None = Field(default=None, gt=0, le=2000, title="Length along the road")


class CameraIn(ApiModel):
    """A camera with its lines and zones (what the worker's site config says about it)."""

    id: Label = Field(title="Camera id")
    site_id: Label = Field(title="Site the camera belongs to")
    name: Text = Field(default="", max_length=200, title="Display name (defaults to the id)")
    interval_seconds: int = Field(default=60, title="Report interval in seconds")
    config_version: int = Field(default=1, ge=0, le=1_000_000, title="Site config revision")
    lines: list[LineIn] = Field(default_factory=list, max_length=32, title="Count lines")
    zones: list[ZoneIn] = Field(default_factory=list, max_length=16, title="Zones")

    @model_validator(mode="after")
    def camera_is_usable(self) -> Self:
        """The worker config's rules: something to measure, unique names, clock intervals."""
        if not self.lines and not self.zones:
            raise ValueError("a camera needs at least one line or zone")
        for kind, names in (
            ("line", [x.name for x in self.lines]),
            ("zone", [z.name for z in self.zones]),
        ):
            if len(names) != len(set(names)):
                raise ValueError(f"{kind} names must be unique")
        if self.interval_seconds not in INTERVAL_CHOICES_S:
            raise ValueError(f"interval_seconds must be one of {INTERVAL_CHOICES_S}")
        return self


class TokenOut(BaseModel):
    """A token, shown once."""

    token_id: str = Field(title="Public id of the token (for revocation)")
    token: str = Field(title="The bearer token; store it now, it is never shown again")
    camera_id: str | None = Field(title="Camera a device token belongs to")


class RevokedOut(BaseModel):
    """How many live tokens a revocation ended."""

    revoked: int = Field(ge=0, title="Tokens revoked")


class AdminTokenIn(ApiModel):
    """An admin token to create."""

    name: Text = Field(min_length=1, max_length=100, title="Who or what the token is for")


class ReportResult(BaseModel):
    """What happened to one report of a batch."""

    report_id: str = Field(title="Report id")
    status: Literal["created", "duplicate", "conflict"] = Field(title="Outcome")


class IngestResult(BaseModel):
    """Outcome of a batch: 200 when nothing conflicted, 409 (same body) otherwise."""

    created: int = Field(ge=0, title="Reports stored now")
    duplicates: int = Field(ge=0, title="Identical resends (nothing changed)")
    conflicts: int = Field(ge=0, title="Reports that differ from the stored one (first kept)")
    results: list[ReportResult] = Field(title="Per-report outcome, in batch order")


class HeartbeatResult(BaseModel):
    """Acknowledgement of a heartbeat."""

    camera_id: str = Field(title="Camera")
    received_at: datetime = Field(title="When the API stored it")
    config_version: int = Field(title="Config revision the API has for this camera")


class ErrorOut(BaseModel):
    """Error body of every non-2xx answer."""

    detail: str | list[dict[str, object]] = Field(title="What went wrong")
