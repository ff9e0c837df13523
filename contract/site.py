"""Site configuration of an edge worker: cameras with their set-up, model and delivery.

One YAML file per site, validated strictly (unknown keys are errors) so a typo never
silently turns a feature off. Coordinates are either relative (0-1 of the frame) or
pixels of a stored ``reference_resolution``, so a camera can change resolution without
moving its lines. The API reads the same file to register a site's cameras.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self, TypeVar

import yaml
from pydantic import Field, ValidationError, model_validator

from contract.camera import SETUP_FIELDS, CameraSetup, ConfigModel
from contract.report import VEHICLE_CLASSES, Label, VehicleClass
from contract.scene import (
    SCENE_GRID_DEFAULT,
    SCENE_GRID_MAX,
    SCENE_K_DEFAULT,
    SCENE_LEARNING_S_DEFAULT,
)

Model = TypeVar("Model", bound=ConfigModel)
CONFIG_VERSION: Literal[1] = 1
DEFAULT_MODEL = "yolo26n.pt"
"""The official weights name: Ultralytics fetches it for users who are online."""


class ModelSettings(ConfigModel):
    """Detector model and inference settings."""

    path: str = Field(default=DEFAULT_MODEL, title="YOLO weights path or official name")
    imgsz: int | None = Field(
        default=None, ge=96, le=1920, title="Inference size; default picks one per frame size"
    )
    confidence: float = Field(default=0.05, ge=0.01, le=0.95, title="Detection confidence floor")
    classes: tuple[VehicleClass, ...] = Field(
        default=VEHICLE_CLASSES, min_length=1, title="Vehicle classes to detect and count"
    )
    backend: Literal["auto", "torch", "openvino"] = Field(
        default="auto", title="auto exports an OpenVINO copy on first run for fast CPU inference"
    )
    device: str = Field(default="cpu", max_length=32, title="Torch device, e.g. cpu or 0")
    cache_dir: Path | None = Field(default=None, title="Where exported model copies are cached")


class Camera(CameraSetup):
    """One stream with its set-up (lines, zones, calibration) and how the device reaches it."""

    id: Label = Field(title="Camera id (as registered in the API)")
    source: str = Field(min_length=1, max_length=2048, title="File, RTSP/HTTP URL or device index")
    token_file: Path | None = Field(
        default=None, title="This camera's device token file (multi-camera workers)"
    )
    plays: int = Field(
        default=1, ge=0, le=1_000_000, title="Times a file source is played (0: forever; demos)"
    )
    max_detect_fps: float = Field(
        default=30.0, gt=0, le=120, title="Analyse at most this many frames per stream second"
    )
    min_analysis_fps: float = Field(
        default=10.0,
        gt=0,
        le=120,
        title="Analyse at least this many while tracked vehicles move slowly (≥ max: fixed rate)",
    )
    motion_gate: bool = Field(
        default=True, title="Skip detection while nothing moves and no vehicle is tracked"
    )

    def setup(self) -> CameraSetup:
        """The part of this camera the API versions and may replace."""
        return CameraSetup.model_validate(self.model_dump(include=set(SETUP_FIELDS)))

    def with_setup(self, setup: CameraSetup) -> Camera:
        """This camera counting with another set-up (a remote configuration), revalidated."""
        fields = self.model_dump(exclude=set(SETUP_FIELDS))
        return Camera.model_validate({**fields, **setup.model_dump()})


class Uplink(ConfigModel):
    """Where and how reports are delivered."""

    api_url: str | None = Field(default=None, max_length=2048, title="Central API base URL")
    token_file: Path | None = Field(default=None, title="File holding the device token")
    timeout_s: float = Field(default=10, gt=0, le=300, title="HTTP timeout")
    batch_size: int = Field(default=100, ge=1, le=500, title="Reports per request")
    heartbeat_s: float = Field(default=60, ge=5, le=3600, title="Heartbeat period")


class Outbox(ConfigModel):
    """Durable queue of reports waiting for delivery."""

    path: Path = Field(default=Path("tally-outbox.db"), title="SQLite outbox file")
    max_reports: int = Field(default=100_000, ge=10, le=10_000_000, title="Drop-oldest bound")


class SceneSettings(ConfigModel):
    """How the worker learns its scene map (only sent when the API asks for one)."""

    learning_s: float = Field(
        default=SCENE_LEARNING_S_DEFAULT, ge=10, le=3600, title="Analysed stream seconds per map"
    )
    grid: int = Field(
        default=SCENE_GRID_DEFAULT, ge=8, le=SCENE_GRID_MAX, title="Cells on the frame's long side"
    )
    k: int = Field(
        default=SCENE_K_DEFAULT, ge=3, le=1000, title="Distinct vehicles a cell needs to be shown"
    )


class SiteConfig(ConfigModel):
    """A worker's whole configuration."""

    version: Literal[1] = Field(default=CONFIG_VERSION, title="Config file format version")
    config_version: int = Field(default=1, ge=0, le=1_000_000, title="Revision of this site")
    site: Label = Field(title="Site id")
    model: ModelSettings = Field(default_factory=ModelSettings, title="Detector")
    cameras: list[Camera] = Field(min_length=1, max_length=64, title="Cameras")
    uplink: Uplink = Field(default_factory=Uplink, title="Delivery")
    outbox: Outbox = Field(default_factory=Outbox, title="Outbox")
    scene: SceneSettings = Field(default_factory=SceneSettings, title="Scene map learning")

    @model_validator(mode="after")
    def camera_ids_unique(self) -> Self:
        """Camera ids key every report."""
        ids = [c.id for c in self.cameras]
        if len(ids) != len(set(ids)):
            raise ValueError("camera ids must be unique")
        return self


class ConfigError(Exception):
    """A config that cannot be used, with a message fit for an installer."""


def load_config(path: Path) -> SiteConfig:
    """Read and validate a site config; every problem is reported with its location."""
    return load_yaml_model(path, SiteConfig)


def load_yaml_model(path: Path, model: type[Model]) -> Model:
    """Read a YAML (or JSON, which is YAML) mapping and validate it as ``model``; a
    ConfigError lists every problem with its location."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {format_validation_error(exc)}") from exc


def format_validation_error(exc: ValidationError) -> str:
    """One line per problem: 'cameras.0.lines.1: ...'."""
    lines = [f"{exc.error_count()} problem(s)"]
    for err in exc.errors():
        where = ".".join(str(part) for part in err["loc"]) or "(top level)"
        lines.append(f"  {where}: {err['msg']}")
    return "\n".join(lines)
