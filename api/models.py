"""Database schema: registry (sites, cameras, lines, zones, tokens), received data, rollups.

Times of traffic data are whole seconds since the Unix epoch (UTC) in BIGINT columns: the same
arithmetic and index behaviour on SQLite and PostgreSQL, and bucketing never depends on a
driver's idea of time zones. Audit times (received_at, last_seen_at) are timezone-aware.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

LABEL_LENGTH = 32
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both databases (SQLite hands back naive ones otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base with deterministic constraint names (stable migrations)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def label_column(**kwargs: Any) -> Mapped[str]:
    """A column holding a contract label (camera, line, zone, direction id)."""
    return mapped_column(String(LABEL_LENGTH), **kwargs)


class Site(Base):
    """A place with one or more cameras; `public` puts it in the open-data feeds."""

    __tablename__ = "sites"

    id: Mapped[str] = label_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    road: Mapped[str] = mapped_column(String(200), default="")
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    timezone: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    listed: Mapped[bool] = mapped_column(Boolean, default=True)
    """In the public camera register (separate from `public`, which publishes its counts)."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    cameras: Mapped[list[Camera]] = relationship(
        back_populates="site", order_by="Camera.id", cascade="all, delete-orphan"
    )


class Camera(Base):
    """A camera, which is also the device that reports for it (one token set per camera)."""

    __tablename__ = "cameras"

    id: Mapped[str] = label_column(primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    interval_seconds: Mapped[int] = mapped_column(Integer)
    config_version: Mapped[int] = mapped_column(Integer, default=1)
    reported_config_version: Mapped[int | None] = mapped_column(Integer)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_report_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    scene_map_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    """An editor asked for a fresh scene map; cleared when one learnt after this arrives."""

    site: Mapped[Site] = relationship(back_populates="cameras")
    lines: Mapped[list[CountLine]] = relationship(
        order_by="CountLine.name", cascade="all, delete-orphan"
    )
    zones: Mapped[list[Zone]] = relationship(order_by="Zone.name", cascade="all, delete-orphan")


class CountLine(Base):
    """A count line; `directions` maps each geometric crossing direction to its label."""

    __tablename__ = "count_lines"
    __table_args__ = (UniqueConstraint("camera_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    camera_id: Mapped[str] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"))
    name: Mapped[str] = label_column()
    directions: Mapped[dict[str, str]] = mapped_column(JSON)


class Zone(Base):
    """A congestion zone of a camera."""

    __tablename__ = "zones"
    __table_args__ = (UniqueConstraint("camera_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    camera_id: Mapped[str] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"))
    name: Mapped[str] = label_column()
    lanes: Mapped[int] = mapped_column(Integer, default=1)
    length_m: Mapped[float | None] = mapped_column(Float)


class CameraConfig(Base):
    """One version of a camera's set-up (``contract.camera.CameraSetup``); the API is the
    source of truth and a worker pulls the newest. Versions are never changed or deleted."""

    __tablename__ = "camera_configs"

    camera_id: Mapped[str] = mapped_column(
        ForeignKey("cameras.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    setup: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(254))
    """Account e-mail, ``token:<id>`` or ``cli``, as in the audit log."""
    note: Mapped[str] = mapped_column(String(500), default="")


class SceneMapRecord(Base):
    """A scene map a worker sent (``contract.scene.SceneMap``), kept with its window."""

    __tablename__ = "scene_maps"
    __table_args__ = (Index("ix_scene_maps_camera_window", "camera_id", "window_end"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    camera_id: Mapped[str] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"))
    window_start: Mapped[datetime] = mapped_column(UTCDateTime())
    window_end: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


class ValidationSession(Base):
    """A manual tally at the roadside, compared with the camera's counts for the same window.

    The window is whole report intervals, so the comparison needs no pro-rating.
    """

    __tablename__ = "validation_sessions"
    __table_args__ = (Index("ix_validation_sessions_camera", "camera_id", "starts_at_s"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    camera_id: Mapped[str] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"))
    starts_at_s: Mapped[int] = mapped_column(BigInteger)
    ends_at_s: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(12))
    """open, finished or cancelled."""
    created_by: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    manual: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    """Taps per ``line/direction/class``."""
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    """Manual against automatic per line, direction and class, with coverage, once finished."""
    accuracy: Mapped[float | None] = mapped_column(Float)
    sheet: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    """The lines, directions and classes to tally, fixed when the session opened (None: a
    session from before they were kept, which reads the camera's current ones)."""


class ApiToken(Base):
    """A bearer token, stored only as a keyed hash; `id` is the public part used for lookup."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    camera_id: Mapped[str | None] = mapped_column(
        ForeignKey("cameras.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100), default="")
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class User(Base):
    """A named planner account; `role` is viewer, editor or admin (see api/services/access)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(8))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    """Argon2id hash; None for accounts that only sign in through single sign-on."""
    oidc_subject: Mapped[str | None] = mapped_column(String(255), unique=True)
    """`iss|sub` of the identity-provider account linked to this one."""
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    sites: Mapped[list[UserSite]] = relationship(
        order_by="UserSite.site_id", cascade="all, delete-orphan"
    )


class UserSite(Base):
    """Restricts an account to some sites: a user with no rows here sees every site."""

    __tablename__ = "user_sites"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    site_id: Mapped[str] = mapped_column(
        ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True
    )


class LoginSession(Base):
    """A server-side login session; the cookie holds `id` and a secret whose keyed hash is
    stored, so a copy of the database cannot be replayed as a cookie."""

    __tablename__ = "login_sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    client_ip: Mapped[str] = mapped_column(String(64), default="")


class AuditEvent(Base):
    """One admin or editor action: who, what, when, from where; never a secret."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_at", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(254))
    """The account's e-mail, `token:<id>` for an admin token, or `cli` for the command line."""
    role: Mapped[str] = mapped_column(String(8), default="")
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(200), default="")
    client_ip: Mapped[str] = mapped_column(String(64), default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class IntervalReportRecord(Base):
    """An interval report exactly as received (audit), plus its header fields for queries.

    On PostgreSQL this and the four row tables below are partitioned by month of
    `interval_start_s` (migration 0008, api/services/partitions.py), and the primary key there
    is `(camera_id, interval_start_s)`: a partitioned table's unique keys must hold the
    partition key, and `report_id` is derived from that pair, so it is unique either way.
    """

    __tablename__ = "interval_reports"
    __table_args__ = (UniqueConstraint("camera_id", "interval_start_s"),)

    report_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    camera_id: Mapped[str] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"))
    interval_start_s: Mapped[int] = mapped_column(BigInteger)
    interval_seconds: Mapped[int] = mapped_column(Integer)
    partial: Mapped[bool] = mapped_column(Boolean)
    coverage: Mapped[float] = mapped_column(Float)
    frames_processed: Mapped[int] = mapped_column(Integer)
    fps: Mapped[float] = mapped_column(Float)
    reconnects: Mapped[int] = mapped_column(Integer)
    stalls: Mapped[int] = mapped_column(Integer)
    dropped_reports: Mapped[int] = mapped_column(Integer)
    outbox_backlog: Mapped[int] = mapped_column(Integer)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    payload_sha256: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    wire_bytes: Mapped[int | None] = mapped_column(Integer)
    """This report's share of the request body the API received (null: stored before it was
    counted)."""
    config_version: Mapped[int | None] = mapped_column(Integer)
    """Camera configuration the interval was counted with (null: a version 1 report)."""
    analysed_fps: Mapped[float | None] = mapped_column(Float)
    detection_share: Mapped[float | None] = mapped_column(Float)


# A report's rows below share its natural key (camera, interval start) and have no foreign
# key to it (migration 0009): PostgreSQL checked one for every row against the partitioned
# report table, which cost it more than storing the row. Ingest writes rows only with their
# report, in one transaction, and they go with it: site deletion and retention delete them
# (api/services/registry.py, partitions.py), and PostgreSQL drops a month of all five tables.


class CountRecord(Base):
    """One (line, direction, class) count of one report; the primary key is the unique key."""

    __tablename__ = "count_rows"

    camera_id: Mapped[str] = label_column(primary_key=True)
    interval_start_s: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    line: Mapped[str] = label_column(primary_key=True)
    direction: Mapped[str] = label_column(primary_key=True)
    vehicle_class: Mapped[str] = mapped_column(String(16), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)


class MovementRecord(Base):
    """Vehicles of one class that went from one gate to another in one report."""

    __tablename__ = "movement_rows"

    camera_id: Mapped[str] = label_column(primary_key=True)
    interval_start_s: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    origin: Mapped[str] = label_column(primary_key=True)
    destination: Mapped[str] = label_column(primary_key=True)
    vehicle_class: Mapped[str] = mapped_column(String(16), primary_key=True)
    movement: Mapped[str | None] = mapped_column(String(8))
    count: Mapped[int] = mapped_column(Integer)


class UnmatchedRecord(Base):
    """Vehicles of one class seen at one gate only in one report."""

    __tablename__ = "unmatched_rows"

    camera_id: Mapped[str] = label_column(primary_key=True)
    interval_start_s: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    gate: Mapped[str] = label_column(primary_key=True)
    vehicle_class: Mapped[str] = mapped_column(String(16), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)


class ZoneRecord(Base):
    """Congestion of one zone in one report."""

    __tablename__ = "zone_rows"

    camera_id: Mapped[str] = label_column(primary_key=True)
    interval_start_s: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    zone: Mapped[str] = label_column(primary_key=True)
    mean_vehicles: Mapped[float] = mapped_column(Float)
    max_vehicles: Mapped[int] = mapped_column(Integer)
    occupancy_time: Mapped[float] = mapped_column(Float)
    occupancy_area: Mapped[float] = mapped_column(Float)
    mean_speed_kmh: Mapped[float | None] = mapped_column(Float)
    p85_speed_kmh: Mapped[float | None] = mapped_column(Float)
    speed_histogram: Mapped[list[int] | None] = mapped_column(JSON)
    """Vehicles per contract speed bin (version 1 reports: frame samples); the zone series
    sums them per bin to merge reports exactly."""
    stopped_share: Mapped[float] = mapped_column(Float)
    queue_vehicles: Mapped[float] = mapped_column(Float)
    queue_m: Mapped[float | None] = mapped_column(Float)
    density_veh_km_lane: Mapped[float | None] = mapped_column(Float)
    density_pcu_km_lane: Mapped[float | None] = mapped_column(Float)
    los: Mapped[str | None] = mapped_column(String(1))


class DeviceHealth(Base):
    """The latest heartbeat of each camera's worker."""

    __tablename__ = "device_health"

    camera_id: Mapped[str] = mapped_column(
        ForeignKey("cameras.id", ondelete="CASCADE"), primary_key=True
    )
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime())
    uptime_s: Mapped[float] = mapped_column(Float)
    outbox_backlog: Mapped[int] = mapped_column(Integer)
    dropped_reports: Mapped[int] = mapped_column(Integer)
    dead_lettered_reports: Mapped[int] = mapped_column(Integer, default=0)
    config_version: Mapped[int] = mapped_column(Integer)
    streams: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    software_version: Mapped[str | None] = mapped_column(String(64))
    code_sha256: Mapped[str | None] = mapped_column(String(64))
    model_sha256: Mapped[str | None] = mapped_column(String(64))
    config_pull: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    """The worker's last configuration pull: version, applied or refused, reason, when."""


class CameraTraffic(Base):
    """Request-body bytes the API received and stored from a camera, per UTC hour: measured
    here, never claimed by the worker (the public register publishes them)."""

    __tablename__ = "camera_traffic"

    camera_id: Mapped[str] = mapped_column(
        ForeignKey("cameras.id", ondelete="CASCADE"), primary_key=True
    )
    hour_start_s: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    report_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    report_requests: Mapped[int] = mapped_column(Integer, default=0)
    heartbeat_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    heartbeat_requests: Mapped[int] = mapped_column(Integer, default=0)


class ClassCounts:
    """Per-class count columns of a rollup (the contract's five classes).

    INTEGER, not BIGINT: a bucket holds at most an hour of one camera (well inside 2**31), and
    PostgreSQL sums INTEGER into BIGINT but BIGINT into NUMERIC, which is slower to read.
    """

    n_bicycle: Mapped[int] = mapped_column(Integer, default=0)
    n_car: Mapped[int] = mapped_column(Integer, default=0)
    n_motorcycle: Mapped[int] = mapped_column(Integer, default=0)
    n_bus: Mapped[int] = mapped_column(Integer, default=0)
    n_truck: Mapped[int] = mapped_column(Integer, default=0)


class LineRollup(ClassCounts, Base):
    """Counts per (granularity, camera, bucket, line, direction), maintained at ingest."""

    __tablename__ = "line_rollups"

    granularity_s: Mapped[int] = mapped_column(Integer, primary_key=True)
    camera_id: Mapped[str] = label_column(primary_key=True)
    bucket_start_s: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    line: Mapped[str] = label_column(primary_key=True)
    direction: Mapped[str] = label_column(primary_key=True)


class CameraRollup(ClassCounts, Base):
    """Coverage and all-line totals per (granularity, camera, bucket), maintained at ingest."""

    __tablename__ = "camera_rollups"
    __table_args__ = (
        Index(
            "ix_camera_rollups_bucket",
            "granularity_s",
            "bucket_start_s",
            "camera_id",
            "covered_s",
            "n_bicycle",
            "n_car",
            "n_motorcycle",
            "n_bus",
            "n_truck",
        ),
    )

    granularity_s: Mapped[int] = mapped_column(Integer, primary_key=True)
    camera_id: Mapped[str] = label_column(primary_key=True)
    bucket_start_s: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    covered_s: Mapped[float] = mapped_column(Float, default=0.0)
    reports: Mapped[int] = mapped_column(Integer, default=0)


class MovementRollup(ClassCounts, Base):
    """Turning movements per (granularity, camera, bucket, origin gate, destination gate),
    maintained at ingest; the movement's name comes from the camera's layout when read."""

    __tablename__ = "movement_rollups"

    granularity_s: Mapped[int] = mapped_column(Integer, primary_key=True)
    camera_id: Mapped[str] = label_column(primary_key=True)
    bucket_start_s: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    origin: Mapped[str] = label_column(primary_key=True)
    destination: Mapped[str] = label_column(primary_key=True)


class UnmatchedRollup(ClassCounts, Base):
    """Vehicles seen at one gate only, per (granularity, camera, bucket, gate)."""

    __tablename__ = "unmatched_rollups"

    granularity_s: Mapped[int] = mapped_column(Integer, primary_key=True)
    camera_id: Mapped[str] = label_column(primary_key=True)
    bucket_start_s: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    gate: Mapped[str] = label_column(primary_key=True)


class MovementCoverageRollup(Base):
    """Seconds in which a camera watched movements, per (granularity, camera, bucket): only
    from v2 reports counted with two or more gates, so a bin of version-1 or single-line
    reports is a movement gap, not zero movements."""

    __tablename__ = "movement_coverage_rollups"

    granularity_s: Mapped[int] = mapped_column(Integer, primary_key=True)
    camera_id: Mapped[str] = label_column(primary_key=True)
    bucket_start_s: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    covered_s: Mapped[float] = mapped_column(Float, default=0.0)
    reports: Mapped[int] = mapped_column(Integer, default=0)
