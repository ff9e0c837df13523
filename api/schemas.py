"""Request and response bodies of the API (the device payloads are `contract`'s models)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from contract import GEOMETRIC_DIRECTIONS, GeometricDirection, Label
from contract.camera import (
    MAX_CALIBRATION_POINTS,
    CameraSetup,
    Coordinate,
    Point,
    interval_problems,
    naming_problems,
)
from contract.geometry import local_metres
from contract.report import MAX_CONFIG_VERSION

CameraStatus = Literal["online", "offline", "never"]
Text = Annotated[str, StringConstraints(pattern=r"^[^\x00]*$")]
"""Free text: anything but NUL, which PostgreSQL cannot store (it was a 500 there)."""


class ApiModel(BaseModel):
    """Strict base for request bodies: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid")


def known_timezone(value: str) -> str:
    """Buckets align to the site's clock, so the zone must be known."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA timezone {value!r}") from exc
    return value


SiteName = Annotated[Text, Field(min_length=1, max_length=200, title="Display name")]
Road = Annotated[Text, Field(max_length=200, title="Road name or number")]
Latitude = Annotated[float, Field(ge=-90, le=90, title="Latitude (WGS 84)")]
Longitude = Annotated[float, Field(ge=-180, le=180, title="Longitude (WGS 84)")]
TimezoneName = Annotated[
    Text, Field(max_length=64, title="IANA timezone of the site"), AfterValidator(known_timezone)
]
Description = Annotated[Text, Field(max_length=2000, title="Free text")]
PublicFlag = Annotated[bool, Field(title="Publish in the open-data feeds")]
ListedFlag = Annotated[
    bool, Field(title="Show the site's cameras in the public camera register (counts: `public`)")
]


class SiteFields(ApiModel):
    """A site's editable fields, with the bounds that registering and editing share."""

    name: SiteName
    road: Road
    lat: Latitude
    lon: Longitude
    timezone: TimezoneName
    description: Description
    public: PublicFlag
    listed: ListedFlag


class SiteIn(SiteFields):
    """A site to register (the optional fields get their defaults)."""

    id: Label = Field(title="Site id")
    road: Road = ""
    timezone: TimezoneName = "UTC"
    description: Description = ""
    public: PublicFlag = False
    listed: ListedFlag = True


class SiteUpdate(SiteFields):
    """A site's new fields: PUT replaces every one of them (the id stays)."""


def direction_labels(direction_names: Mapping[GeometricDirection, str]) -> dict[str, str]:
    """All four geometric directions with the label the worker reports for each."""
    return {g: direction_names.get(g, g) for g in GEOMETRIC_DIRECTIONS}


class LineIn(ApiModel):
    """A count line and the labels of its crossing directions."""

    name: Label = Field(title="Line name")
    direction_names: dict[GeometricDirection, Label] = Field(
        default_factory=dict, title="Labels for geometric directions (others keep their name)"
    )

    def directions(self) -> dict[str, str]:
        """All four geometric directions with the label the worker reports for each."""
        return direction_labels(self.direction_names)


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
        """The worker config's rules (defined once, in the contract): something to measure,
        unique names, clock intervals."""
        problems = naming_problems([x.name for x in self.lines], [z.name for z in self.zones])
        problems += interval_problems(self.interval_seconds)
        if problems:
            raise ValueError("; ".join(problems))
        return self


TokenKindName = Literal["device", "admin"]
TokenStatus = Literal["live", "expired", "revoked"]


class TokenOut(BaseModel):
    """A token, shown once."""

    token_id: str = Field(title="Public id of the token (for revocation)")
    token: str = Field(title="The bearer token; store it now, it is never shown again")
    camera_id: str | None = Field(title="Camera a device token belongs to")
    expires_at: datetime | None = Field(title="When the token stops working (null: never)")


class TokenInfo(BaseModel):
    """A stored token as the admin list shows it: everything but the secret."""

    token_id: str = Field(title="Public id of the token")
    kind: TokenKindName = Field(title="Device (one camera's worker) or admin")
    camera_id: str | None = Field(title="Camera a device token belongs to")
    name: str = Field(title="Who or what the token is for")
    created_at: datetime = Field(title="Issued at")
    expires_at: datetime | None = Field(title="Expires at (null: never)")
    last_used_at: datetime | None = Field(title="Last accepted use (to the minute)")
    revoked_at: datetime | None = Field(title="Revoked at")
    status: TokenStatus = Field(title="live, expired or revoked")


class TokenList(BaseModel):
    """Tokens, newest first."""

    tokens: list[TokenInfo] = Field(title="Tokens")


class RevokedOut(BaseModel):
    """How many live tokens a revocation ended."""

    revoked: int = Field(ge=0, title="Tokens revoked")


class AdminTokenIn(ApiModel):
    """An admin token to create."""

    name: Text = Field(min_length=1, max_length=100, title="Who or what the token is for")


Role = Literal["viewer", "editor", "admin"]
"""Account roles, lowest first (api.services.access orders them)."""
EMAIL_PATTERN = (
    r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
)


def lower_case(value: object) -> object:
    """E-mail addresses compare case-insensitively: store and look them up lower-cased."""
    return value.strip().lower() if isinstance(value, str) else value


Email = Annotated[
    str,
    BeforeValidator(lower_case),
    StringConstraints(max_length=254, pattern=EMAIL_PATTERN),
    Field(title="E-mail address (sign-in name, lower-cased)"),
]
DisplayName = Annotated[Text, Field(min_length=1, max_length=200, title="Name shown to people")]
SiteRestriction = Annotated[
    Annotated[list[Label], Field(min_length=1, max_length=1000)] | None,
    Field(title="Sites the account is restricted to (null: every site)"),
]


class UserIn(ApiModel):
    """An account to create; its password is generated and shown once."""

    email: Email
    display_name: DisplayName
    role: Role = Field(title="Role")
    site_ids: SiteRestriction = None


class UserPatch(ApiModel):
    """Fields to change; absent ones stay. Only `site_ids` may be null (every site)."""

    display_name: DisplayName | None = None
    role: Role | None = Field(default=None, title="Role")
    site_ids: SiteRestriction = None
    disabled: bool | None = Field(default=None, title="Refuse sign-in and end every session")

    @model_validator(mode="after")
    def changes_something(self) -> Self:
        """An empty patch is a client bug; a null display name, role or flag means nothing."""
        if not self.model_fields_set:
            raise ValueError("name at least one field to change")
        nulls = sorted(
            name for name in self.model_fields_set - {"site_ids"} if getattr(self, name) is None
        )
        if nulls:
            raise ValueError(f"{', '.join(nulls)} cannot be null")
        return self


class UserOut(BaseModel):
    """An account, without anything secret."""

    id: int = Field(title="Account id")
    email: str = Field(title="E-mail address")
    display_name: str = Field(title="Display name")
    role: Role = Field(title="Role")
    site_ids: list[str] | None = Field(title="Sites the account is restricted to (null: all)")
    disabled: bool = Field(title="Sign-in refused")
    sso: bool = Field(title="Linked to a single sign-on account")
    created_at: datetime = Field(title="Created at")
    last_login_at: datetime | None = Field(title="Last sign-in")


class UserList(BaseModel):
    """Accounts, by e-mail."""

    users: list[UserOut] = Field(title="Accounts")


class UserCreated(BaseModel):
    """A new account and its generated password: this response is the only place it appears."""

    user: UserOut = Field(title="The account")
    password: str = Field(title="Generated password; hand it over now, it is never shown again")


class AuditEventOut(BaseModel):
    """One recorded admin or editor action."""

    id: int = Field(title="Event id (page with before_id)")
    at: datetime = Field(title="When")
    actor: str = Field(title="Account e-mail, token:<id> for an admin token, or cli")
    role: str = Field(title="The actor's role then (empty for the command line)")
    action: str = Field(title="What was done, e.g. site.update")
    target: str = Field(title="Id of what it was done to")
    client_ip: str = Field(title="Where the request came from")
    details: dict[str, Any] = Field(title="Changed fields and their new non-secret values")


class AuditLog(BaseModel):
    """Audit events, newest first."""

    events: list[AuditEventOut] = Field(title="Events")


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
    """Acknowledgement of a heartbeat, with what the worker should do next."""

    camera_id: str = Field(title="Camera")
    received_at: datetime = Field(title="When the API stored it")
    config_version: int = Field(
        title="Newest configuration version the API has for this camera (a newer one than the "
        "worker's: GET /api/v1/device/config)"
    )
    scene_map_wanted: bool = Field(
        default=False, title="An editor asked for a fresh scene map: learn one and post it"
    )


class DeviceConfig(BaseModel):
    """The camera's newest configuration, as a worker pulls it."""

    camera_id: str = Field(title="Camera")
    version: int = Field(title="Configuration version (report it as config_version)")
    setup: CameraSetup = Field(title="Lines, zones, calibration, interval and classes")


MAX_NOTE = 500
"""Longest note of a configuration version (its column's width)."""


class ConfigIn(ApiModel):
    """A camera's new set-up, saved as its next configuration version."""

    setup: CameraSetup = Field(title="Lines, zones, calibration, interval and classes")
    note: Text = Field(default="", max_length=MAX_NOTE, title="Why, for the version history")
    base_version: int | None = Field(
        default=None,
        ge=0,
        le=MAX_CONFIG_VERSION,
        title="The version this edit started from: 409 when another was saved since "
        "(null: save regardless)",
    )


PlanePoint = tuple[Coordinate, Coordinate]
LatLon = tuple[Latitude, Longitude]
PointCount = Field(min_length=4, max_length=MAX_CALIBRATION_POINTS)
"""As many points as a calibration takes (it needs as many ground as image points)."""


class CalibrationFitIn(ApiModel):
    """Image points with their ground positions, in metres or as latitude and longitude."""

    image_points: Annotated[list[PlanePoint], PointCount] = Field(title="Image points")
    ground_points_m: Annotated[list[PlanePoint], PointCount] | None = Field(
        default=None, title="Ground points, metres east and north of any point"
    )
    ground_points_latlon: Annotated[list[LatLon], PointCount] | None = Field(
        default=None, title="Ground points as latitude and longitude (WGS 84, e.g. read off a map)"
    )

    @model_validator(mode="after")
    def one_kind_of_ground(self) -> Self:
        """Metres or latitude/longitude: the two together would contradict each other."""
        if (self.ground_points_m is None) == (self.ground_points_latlon is None):
            raise ValueError("give ground_points_m or ground_points_latlon (exactly one)")
        return self

    def ground_points(self) -> list[Point]:
        """The ground points in metres: latitude/longitude go onto the local plane around
        their centroid (a homography needs flat metres, not degrees)."""
        if self.ground_points_latlon is not None:
            return local_metres(self.ground_points_latlon)
        return list(self.ground_points_m or [])


class ErrorOut(BaseModel):
    """Error body of every non-2xx answer."""

    detail: str | list[dict[str, object]] = Field(title="What went wrong")
