"""The registry's SensorThings entity sets as SQL views (public sites only).

Each view is a SELECT with one named column per filterable property, so `$filter`,
`$orderby` and paging compile to plain SQL on it. Ids are our own keys: a site's, a
camera's, and for a Datastream `camera:line:direction:aggregation:property`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    and_,
    case,
    cast,
    false,
    literal,
    not_,
    null,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.selectable import Subquery

from api.models import Camera, CountLine, Site
from api.services.sta.context import Context, Hints
from api.services.sta.sqlfuncs import epoch_of
from contract import GEOMETRIC_DIRECTIONS, VEHICLE_CLASSES

SEPARATOR = ":"
"""Between the parts of a composite id; labels never contain it."""
LEVELS: tuple[tuple[str, int, str], ...] = (
    ("15min", 900, "15 minutes"),
    ("1h", 3600, "1 hour"),
    ("1d", 86400, "1 day (UTC)"),
)
"""Aggregation levels of the Datastreams: name, seconds, label."""
LEVEL_SECONDS = {name: seconds for name, seconds, _ in LEVELS}
ALL_VEHICLES = "vehicles"
CLASS_LABELS = {
    "bicycle": "Bicycles",
    "car": "Cars",
    "motorcycle": "Motorcycles",
    "bus": "Buses",
    "truck": "Trucks",
}
PROPERTIES: tuple[tuple[str, str, str], ...] = (
    (ALL_VEHICLES, "Vehicles", "all"),
    *((c, CLASS_LABELS[c], c) for c in VEHICLE_CLASSES),
)
"""ObservedProperties: id, name, vehicle class ('all' for every class together)."""
GEO_JSON = "application/geo+json"
OBSERVATION_TYPE = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_CountObservation"
UNIT = ("vehicles", "veh", "http://qudt.org/vocab/unit/NUM")
DEFINITION = "https://www.opengis.net/def/property/OGC/0/Count"
SENSOR_ENCODING = "text/plain"
COUNTING_METHOD = (
    "Video line-crossing counts from a camera worker at the roadside: a detector finds the "
    "vehicles in each analysed frame, a tracker follows them, and a vehicle counts once per "
    "count line when the centre of its box crosses the line segment; its direction is the "
    "side it moved to. Counts leave the worker only as totals per interval and class; no "
    "image, position or trajectory is kept or sent."
)
Expr = ColumnElement[Any] | InstrumentedAttribute[Any]
"""A column or an expression, as the builders below take them."""
View = Select[*tuple[Any, ...]]
"""The SELECT of an entity set (any columns)."""
PAIRS = (("down", "up"), ("right", "left"))
"""A line's geometric directions come in pairs: down/up for a line more horizontal than
vertical, right/left otherwise."""


def text(value: Expr | str) -> ColumnElement[str]:
    """A value as text, for building names and ids."""
    return literal(value, String) if isinstance(value, str) else cast(value, String)


def joined(*parts: Expr | str) -> ColumnElement[str]:
    """Text parts concatenated (`||` on both databases)."""
    result = text(parts[0])
    for part in parts[1:]:
        result = result + text(part)
    return result


def composite_id(*parts: Expr) -> ColumnElement[str]:
    pieces: list[Expr | str] = []
    for part in parts:
        pieces += [SEPARATOR, part] if pieces else [part]
    return joined(*pieces)


def constant_rows(names: Sequence[str], rows: Sequence[Sequence[Any]], name: str) -> Subquery:
    """A small table of literal rows (portable: a UNION ALL of SELECTs); empty if no rows."""
    selects = [
        select(*(literal(v).label(n) for n, v in zip(names, row, strict=True))) for row in rows
    ]
    if not selects:
        blank = select(*(null().label(n) for n in names)).where(false())
        return blank.subquery(name)
    if len(selects) == 1:
        return selects[0].subquery(name)
    return union_all(*selects).subquery(name)


def allowed(hints: Hints, column: str, rows: Sequence[Sequence[Any]]) -> list[Sequence[Any]]:
    """The literal rows whose first value the hints allow in `column`."""
    return [row for row in rows if hints.allows(column, row[0])]


def hinted(hints: Hints, pairs: Sequence[tuple[str, Expr]]) -> list[Any]:
    """Conditions limiting the given columns to the values the hints allow."""
    conditions = []
    for name, column in pairs:
        values = hints.get(name)
        if values is not None:
            conditions.append(column.in_(sorted(values, key=str)))
    return conditions


def public_site_view(*columns: Expr, hints: Hints, key: str = "id") -> View:
    return select(*columns).where(Site.public.is_(True), *hinted(hints, [(key, Site.id)]))


def site_description() -> ColumnElement[str]:
    return case(
        (Site.description != "", Site.description),
        else_=joined("Traffic counts at ", Site.name),
    )


def things(ctx: Context, hints: Hints) -> View:
    settings = ctx.settings
    return public_site_view(
        Site.id.label("id"),
        Site.name.label("name"),
        site_description().label("description"),
        Site.road.label("road"),
        Site.timezone.label("timezone"),
        literal(settings.open_licence_id, String).label("licence_id"),
        literal(settings.open_licence_url, String).label("licence_url"),
        literal(settings.open_attribution, String).label("attribution"),
        hints=hints,
    )


def locations(_ctx: Context, hints: Hints) -> View:
    """A site's point; also the FeatureOfInterest of its Observations."""
    return public_site_view(
        Site.id.label("id"),
        Site.name.label("name"),
        case((Site.road != "", Site.road), else_=Site.name).label("description"),
        literal(GEO_JSON, String).label("encoding_type"),
        Site.lon.label("lon"),
        Site.lat.label("lat"),
        hints=hints,
    )


def historical_locations(_ctx: Context, hints: Hints) -> View:
    """One per site: sites do not move, so the history is the site's registration."""
    return public_site_view(
        Site.id.label("id"),
        epoch_of(Site.created_at).label("time_s"),
        Site.created_at.label("created_at"),
        hints=hints,
    )


def sensors(_ctx: Context, hints: Hints) -> View:
    statement: View = (
        select(
            Camera.id.label("id"),
            Camera.name.label("name"),
            joined("Traffic camera ", Camera.name, " at ", Site.name).label("description"),
            literal(SENSOR_ENCODING, String).label("encoding_type"),
            literal(COUNTING_METHOD, String).label("metadata"),
            Camera.site_id.label("site_id"),
            Camera.interval_seconds.label("interval_seconds"),
        )
        .join(Site, Site.id == Camera.site_id)
        .where(
            Site.public.is_(True),
            *hinted(hints, [("id", Camera.id), ("site_id", Camera.site_id)]),
        )
    )
    return statement


def observed_properties(_ctx: Context, hints: Hints) -> View:
    rows = [
        (
            prop,
            name,
            DEFINITION,
            f"Number of {name.lower()} counted"
            if prop != ALL_VEHICLES
            else "Number of vehicles of every class counted",
            vehicle_class,
        )
        for prop, name, vehicle_class in PROPERTIES
    ]
    table = constant_rows(
        ("id", "name", "definition", "description", "vehicle_class"),
        allowed(hints, "id", rows),
        "observed_properties",
    )
    return select(table)


def direction_label(g: ColumnElement[str]) -> ColumnElement[str]:
    """The label a line gives the geometric direction `g` (from its JSON mapping)."""
    return case(*((g == d, CountLine.directions[d].as_string()) for d in GEOMETRIC_DIRECTIONS))


def renamed(pair: tuple[str, str]) -> ColumnElement[bool]:
    return or_(*(CountLine.directions[d].as_string() != d for d in pair))


def line_keys(hints: Hints) -> Subquery:
    """(camera, site, line, direction) of every public line direction that can count.

    The registry holds four labels per line, but a line counts in one pair of directions
    (down/up or right/left, by its orientation, which the registry does not keep): a pair
    that the site renamed is the one in use; with no pair renamed, all four are listed.
    """
    geometric = constant_rows(("g",), [(d,) for d in GEOMETRIC_DIRECTIONS], "geometric")
    g = geometric.c.g
    vertical, horizontal = renamed(PAIRS[0]), renamed(PAIRS[1])
    in_use = or_(
        and_(g.in_(PAIRS[0]), or_(vertical, not_(horizontal))),
        and_(g.in_(PAIRS[1]), or_(horizontal, not_(vertical))),
    )
    label = direction_label(g)
    statement = (
        select(
            CountLine.camera_id.label("camera_id"),
            Camera.site_id.label("site_id"),
            CountLine.name.label("line"),
            label.label("direction"),
        )
        .distinct()
        .select_from(CountLine)
        .join(Camera, Camera.id == CountLine.camera_id)
        .join(Site, Site.id == Camera.site_id)
        .join(geometric, true())
        .where(Site.public.is_(True), in_use, label.is_not(None))
    )
    for name, column in (
        ("camera_id", CountLine.camera_id),
        ("site_id", Camera.site_id),
        ("line", CountLine.name),
    ):
        statement = statement.where(*hinted(hints, [(name, column)]))
    directions = hints.get("direction")
    if directions is not None:
        statement = statement.where(label.in_(sorted(map(str, directions))))
    return statement.subquery("line_keys")


def levels_table(hints: Hints) -> Subquery:
    rows = [(name, seconds, label) for name, seconds, label in LEVELS]
    return constant_rows(("level", "level_s", "level_label"), allowed(hints, "level", rows), "lv")


def properties_table(hints: Hints) -> Subquery:
    rows = [(prop, name, vehicle_class) for prop, name, vehicle_class in PROPERTIES]
    return constant_rows(
        ("property", "property_name", "vehicle_class"), allowed(hints, "property", rows), "pr"
    )


def datastreams(_ctx: Context, hints: Hints) -> View:
    """camera x line x direction x aggregation level x observed property."""
    keys, lv, pr = line_keys(hints), levels_table(hints), properties_table(hints)
    return (
        select(
            composite_id(
                keys.c.camera_id, keys.c.line, keys.c.direction, lv.c.level, pr.c.property
            ).label("id"),
            joined(
                pr.c.property_name,
                " per ",
                lv.c.level_label,
                ": ",
                keys.c.camera_id,
                " ",
                keys.c.line,
                " ",
                keys.c.direction,
            ).label("name"),
            joined(
                pr.c.property_name,
                " crossing line ",
                keys.c.line,
                " of camera ",
                keys.c.camera_id,
                " towards ",
                keys.c.direction,
                ", counted per ",
                lv.c.level_label,
            ).label("description"),
            keys.c.camera_id,
            keys.c.site_id,
            keys.c.line,
            keys.c.direction,
            lv.c.level,
            cast(lv.c.level_s, Integer).label("level_s"),
            pr.c.property,
            pr.c.vehicle_class,
            joined(pr.c.property, "_", lv.c.level).label("layer_name"),
            literal(UNIT[0], String).label("unit_name"),
            literal(UNIT[1], String).label("unit_symbol"),
            literal(UNIT[2], String).label("unit_definition"),
            literal(OBSERVATION_TYPE, String).label("observation_type"),
        )
        .select_from(keys)
        .join(lv, true())
        .join(pr, true())
    )
