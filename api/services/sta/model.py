"""The SensorThings entity sets: their views, properties, navigation, ids and JSON.

A property maps to columns of its view, so one description serves `$filter`, `$orderby`,
`$select` and the output. Navigation properties pair columns of two views, which is how
navigation paths, `$expand` and filters across entities are joined.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import RowMapping

from api.services.open_data import stamp
from api.services.sta import views
from api.services.sta.context import Context, Hints
from api.services.sta.observations import OBSERVATION_KEY, observations
from api.services.sta.views import LEVEL_SECONDS, PROPERTIES, SEPARATOR, View

Kind = Literal["string", "number", "bool", "time", "interval", "geo", "object"]
Row = RowMapping
MOMENT_DIGITS = 12
"""An observation id's start has at most this many digits (epoch seconds; 2100 has 10)."""
SUM_OF = {"15min": None, "1h": "15min", "1d": "1h"}
"""What a summed observation of each level is the sum of."""


@dataclass(frozen=True)
class Field:
    """A property: its kind and view columns (two for an interval: start, end; for a
    point: the site whose point it is), or, for an object, its parts."""

    kind: Kind
    columns: tuple[str, ...] = ()
    parts: Mapping[str, Field] = field(default_factory=dict)


def value(kind: Kind, column: str) -> Field:
    return Field(kind, (column,))


def obj(**parts: Field) -> Field:
    return Field("object", parts=parts)


STRING_ID = value("string", "id")


@dataclass(frozen=True)
class Nav:
    """A navigation property: its target set, whether it is a collection, and the
    (source column, target column) pairs that join the two views."""

    target: str
    many: bool
    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class EntitySet:
    name: str
    singular: str
    view: Callable[[Context, Hints], View]
    fields: Mapping[str, Field]
    navs: Mapping[str, Nav]
    render: Callable[[Row], dict[str, Any]]
    key: tuple[str, ...] = ("id",)
    """View columns an id is made of, in order (joined by ':' when more than one)."""

    def entity_id(self, row: Row) -> str:
        return str(row["id"])

    def restriction(self, entity_id: str) -> dict[str, object] | None:
        """The key columns' values of an id; None when the id cannot exist."""
        if len(self.key) == 1:
            return {self.key[0]: entity_id}
        parts = entity_id.split(SEPARATOR)
        if len(parts) != len(self.key):
            return None
        found: dict[str, object] = dict(zip(self.key, parts, strict=True))
        if found.get("level", "15min") not in LEVEL_SECONDS:
            return None
        if found.get("property", "vehicles") not in {p for p, _, _ in PROPERTIES}:
            return None
        if "start_s" in found:
            start = str(found["start_s"])
            if not (start.isascii() and start.isdigit()) or len(start) > MOMENT_DIGITS:
                return None
            found["start_s"] = int(start)
        return found


def hints_for(restriction: Mapping[str, object]) -> Hints:
    """Pruning hints from equality restrictions on view columns."""
    values = {c: frozenset({v}) for c, v in restriction.items() if c != "start_s"}
    start = restriction.get("start_s")
    if isinstance(start, int):
        return Hints(values, start, start + 1)
    return Hints(values)


def point(row: Row) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [row["lon"], row["lat"]]}


def render_thing(row: Row) -> dict[str, Any]:
    return {
        "name": row["name"],
        "description": row["description"],
        "properties": {
            "road": row["road"],
            "timezone": row["timezone"],
            "licence": {"id": row["licence_id"], "url": row["licence_url"]},
            "attribution": row["attribution"],
        },
    }


def render_location(row: Row) -> dict[str, Any]:
    return {
        "name": row["name"],
        "description": row["description"],
        "encodingType": row["encoding_type"],
        "location": point(row),
    }


def render_feature(row: Row) -> dict[str, Any]:
    return {
        "name": row["name"],
        "description": row["description"],
        "encodingType": row["encoding_type"],
        "feature": point(row),
    }


def render_historical_location(row: Row) -> dict[str, Any]:
    created: datetime = row["created_at"]
    return {"time": created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}


def render_sensor(row: Row) -> dict[str, Any]:
    return {
        "name": row["name"],
        "description": row["description"],
        "encodingType": row["encoding_type"],
        "metadata": row["metadata"],
        "properties": {"intervalSeconds": row["interval_seconds"], "site": row["site_id"]},
    }


def render_observed_property(row: Row) -> dict[str, Any]:
    return {
        "name": row["name"],
        "definition": row["definition"],
        "description": row["description"],
        "properties": {"vehicleClass": row["vehicle_class"]},
    }


def render_datastream(row: Row) -> dict[str, Any]:
    return {
        "name": row["name"],
        "description": row["description"],
        "unitOfMeasurement": {
            "name": row["unit_name"],
            "symbol": row["unit_symbol"],
            "definition": row["unit_definition"],
        },
        "observationType": row["observation_type"],
        "properties": {
            "camera": row["camera_id"],
            "line": row["line"],
            "direction": row["direction"],
            "aggregation": row["level"],
            "aggregationSeconds": row["level_s"],
            "vehicleClass": row["vehicle_class"],
            "layerName": row["layer_name"],
        },
    }


def render_observation(row: Row) -> dict[str, Any]:
    start, end = stamp(row["start_s"]), stamp(row["end_s"])
    return {
        "phenomenonTime": f"{start}/{end}",
        "resultTime": end,
        "result": None if row["result"] is None else int(row["result"]),
        "resultQuality": {
            "coverage": round(min(float(row["coverage"]), 1.0), 4),
            "suppressed": bool(row["suppressed"]),
        },
        "parameters": {
            "aggregation": row["level"],
            "sumOf": SUM_OF[row["level"]] if row["summed"] else None,
        },
    }


NAMED = {"id": STRING_ID, "name": value("string", "name")}
DESCRIBED = {**NAMED, "description": value("string", "description")}
SITE_POINT = {**DESCRIBED, "encodingType": value("string", "encoding_type")}
DATASTREAM_KEY = ("camera_id", "line", "direction", "level", "property")
TO_DATASTREAM = tuple((c, c) for c in DATASTREAM_KEY)

ENTITY_SETS: dict[str, EntitySet] = {
    e.name: e
    for e in (
        EntitySet(
            "Things",
            "Thing",
            views.things,
            {
                **DESCRIBED,
                "properties": obj(
                    road=value("string", "road"),
                    timezone=value("string", "timezone"),
                    attribution=value("string", "attribution"),
                    licence=obj(
                        id=value("string", "licence_id"), url=value("string", "licence_url")
                    ),
                ),
            },
            {
                "Locations": Nav("Locations", True, (("id", "id"),)),
                "HistoricalLocations": Nav("HistoricalLocations", True, (("id", "id"),)),
                "Datastreams": Nav("Datastreams", True, (("id", "site_id"),)),
            },
            render_thing,
        ),
        EntitySet(
            "Locations",
            "Location",
            views.locations,
            {**SITE_POINT, "location": value("geo", "id")},
            {
                "Things": Nav("Things", True, (("id", "id"),)),
                "HistoricalLocations": Nav("HistoricalLocations", True, (("id", "id"),)),
            },
            render_location,
        ),
        EntitySet(
            "HistoricalLocations",
            "HistoricalLocation",
            views.historical_locations,
            {"id": STRING_ID, "time": value("time", "time_s")},
            {
                "Thing": Nav("Things", False, (("id", "id"),)),
                "Locations": Nav("Locations", True, (("id", "id"),)),
            },
            render_historical_location,
        ),
        EntitySet(
            "FeaturesOfInterest",
            "FeatureOfInterest",
            views.locations,
            {**SITE_POINT, "feature": value("geo", "id")},
            {"Observations": Nav("Observations", True, (("id", "site_id"),))},
            render_feature,
        ),
        EntitySet(
            "Sensors",
            "Sensor",
            views.sensors,
            {
                **SITE_POINT,
                "metadata": value("string", "metadata"),
                "properties": obj(
                    intervalSeconds=value("number", "interval_seconds"),
                    site=value("string", "site_id"),
                ),
            },
            {"Datastreams": Nav("Datastreams", True, (("id", "camera_id"),))},
            render_sensor,
        ),
        EntitySet(
            "ObservedProperties",
            "ObservedProperty",
            views.observed_properties,
            {
                **DESCRIBED,
                "definition": value("string", "definition"),
                "properties": obj(vehicleClass=value("string", "vehicle_class")),
            },
            {"Datastreams": Nav("Datastreams", True, (("id", "property"),))},
            render_observed_property,
        ),
        EntitySet(
            "Datastreams",
            "Datastream",
            views.datastreams,
            {
                **DESCRIBED,
                "observationType": value("string", "observation_type"),
                "unitOfMeasurement": obj(
                    name=value("string", "unit_name"),
                    symbol=value("string", "unit_symbol"),
                    definition=value("string", "unit_definition"),
                ),
                "properties": obj(
                    camera=value("string", "camera_id"),
                    line=value("string", "line"),
                    direction=value("string", "direction"),
                    aggregation=value("string", "level"),
                    aggregationSeconds=value("number", "level_s"),
                    vehicleClass=value("string", "vehicle_class"),
                    layerName=value("string", "layer_name"),
                ),
            },
            {
                "Thing": Nav("Things", False, (("site_id", "id"),)),
                "Sensor": Nav("Sensors", False, (("camera_id", "id"),)),
                "ObservedProperty": Nav("ObservedProperties", False, (("property", "id"),)),
                "Observations": Nav("Observations", True, TO_DATASTREAM),
            },
            render_datastream,
            key=DATASTREAM_KEY,
        ),
        EntitySet(
            "Observations",
            "Observation",
            observations,
            {
                "id": STRING_ID,
                "phenomenonTime": Field("interval", ("start_s", "end_s")),
                "resultTime": value("time", "end_s"),
                "result": value("number", "result"),
                "resultQuality": obj(
                    coverage=value("number", "coverage"), suppressed=value("bool", "suppressed")
                ),
                "parameters": obj(aggregation=value("string", "level")),
            },
            {
                "Datastream": Nav("Datastreams", False, TO_DATASTREAM),
                "FeatureOfInterest": Nav("FeaturesOfInterest", False, (("site_id", "id"),)),
            },
            render_observation,
            key=OBSERVATION_KEY,
        ),
    )
}


def default_order(entity: EntitySet) -> tuple[str, ...]:
    """Columns that order an entity set when the client asks for no order (and break ties):
    Observations by time first, so a datastream's history pages forward in time."""
    if entity.name == "Observations":
        return ("start_s", "camera_id", "line", "direction", "level", "property")
    return entity.key
