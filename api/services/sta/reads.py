"""Answering SensorThings requests: resource paths, pages, $expand and the JSON of each.

Pages are fetched one row beyond `$top`, so a nextLink is given exactly when more exist.
Expanded collections of many parents come from one query per navigation property, ranked
per parent with ROW_NUMBER, so `$top` and `$skip` inside `$expand` apply to each parent.

Observations ordered by time (the default, and Masterportal's "latest observation") are
read through a time window that starts near the newest (or oldest) data and widens until
the page is full: the rollups are large, and the first window almost always suffices.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple
from urllib.parse import quote

from odata_query import ast
from sqlalchemy import func, select, text
from sqlalchemy.sql.selectable import Subquery

from api.models import Camera, CameraRollup, Site
from api.services.errors import NotFoundError
from api.services.sta.context import Context, Hints
from api.services.sta.filters import FilterCompiler, filter_hints
from api.services.sta.model import ENTITY_SETS, EntitySet, Nav, Row, hints_for
from api.services.sta.options import Expand, Options, QueryError, parse_options
from api.services.sta.views import View

DAY = 86400
WINDOWS: tuple[int | None, ...] = (DAY // 4, 2 * DAY, 16 * DAY, 128 * DAY, 1024 * DAY, None)
"""Widths of the time windows tried in turn for observations ordered by time."""
CONFORMANCE = (
    "http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/resource-path/resource-path-to-entities",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/request-data",
)
SEGMENT = re.compile(r"^(?P<name>\$?[A-Za-z]+)(?:\((?P<id>'(?:[^']|'')*'|[^()'/]+)\))?$")
LINK_SAFE = "'(),:/"


class Page(NamedTuple):
    rows: list[Row]
    more: bool
    total: int


@dataclass
class Budget:
    """Entities one response may hold (`open_max_rows`), counted as they are rendered."""

    left: int

    def spend(self, entities: int) -> None:
        self.left -= entities
        if self.left < 0:
            raise QueryError(
                "this response would hold more entities than the server allows; "
                "use a smaller $top (also inside $expand)"
            )


# --- links -------------------------------------------------------------------------------


def quoted(entity_id: str) -> str:
    return "'" + entity_id.replace("'", "''") + "'"


def self_link(ctx: Context, entity: EntitySet, row: Row) -> str:
    return f"{ctx.root}/{entity.name}({quoted(entity.entity_id(row))})"


def query_string(params: Mapping[str, str]) -> str:
    """Query options for a link: names as written, values percent-encoded (so an option
    inside $expand never reads as one of the link's own)."""
    return "&".join(f"{name}={quote(value, safe=LINK_SAFE)}" for name, value in params.items())


# --- queries -----------------------------------------------------------------------------


def view_of(ctx: Context, entity: EntitySet, hints: Hints) -> Subquery:
    return entity.view(ctx, hints).subquery("sta_view")


def conditions(
    ctx: Context,
    entity: EntitySet,
    view: Subquery,
    restriction: Mapping[str, object],
    options: Options,
) -> list[Any]:
    found: list[Any] = [view.c[c] == v for c, v in restriction.items()]
    if options.filter is not None:
        found.append(FilterCompiler(ctx, entity, view).condition(options.filter))
    return found


def keys_hints(columns: Sequence[str], keys: Sequence[tuple[Any, ...]]) -> Hints:
    return Hints({c: frozenset(k[i] for k in keys) for i, c in enumerate(columns)})


def flat_page(
    ctx: Context,
    entity: EntitySet,
    hints: Hints,
    restriction: Mapping[str, object],
    options: Options,
) -> list[Row]:
    view = view_of(ctx, entity, hints)
    statement = (
        select(view)
        .where(*conditions(ctx, entity, view, restriction, options))
        .order_by(*FilterCompiler(ctx, entity, view).ordering(options.orderby))
        .offset(options.skip)
        .limit(options.top + 1)
    )
    return list(ctx.session.execute(statement).mappings())


def count_of(
    ctx: Context,
    entity: EntitySet,
    hints: Hints,
    restriction: Mapping[str, object],
    options: Options,
) -> int:
    view = view_of(ctx, entity, hints)
    statement = (
        select(func.count())
        .select_from(view)
        .where(*conditions(ctx, entity, view, restriction, options))
    )
    return int(ctx.session.scalar(statement) or 0)


def ranked(
    ctx: Context,
    entity: EntitySet,
    hints: Hints,
    columns: Sequence[str],
    keys: Sequence[tuple[Any, ...]],
    options: Options,
) -> View:
    """Each parent's page of children (parents named by the children's `columns`). Each
    column is limited to the parents' values, which for several columns may also admit
    children of no parent: `grouped` drops those (a tuple IN would cost a comparison with
    every parent per row)."""
    view = view_of(ctx, entity, hints)
    partition = [view.c[c] for c in columns]
    order = FilterCompiler(ctx, entity, view).ordering(options.orderby)
    extra = [func.row_number().over(partition_by=partition, order_by=order).label("sta_rank")]
    if options.count:
        extra.append(func.count().over(partition_by=partition).label("sta_total"))
    inner = (
        select(view, *extra)
        .where(
            *(view.c[c].in_(sorted({k[i] for k in keys}, key=str)) for i, c in enumerate(columns)),
            *conditions(ctx, entity, view, {}, options),
        )
        .subquery("sta_ranked")
    )
    return (
        select(inner)
        .where(inner.c.sta_rank > options.skip, inner.c.sta_rank <= options.skip + options.top + 1)
        .order_by(inner.c.sta_rank)
    )


def grouped(
    ctx: Context,
    entity: EntitySet,
    hints: Hints,
    columns: Sequence[str],
    keys: Sequence[tuple[Any, ...]],
    options: Options,
) -> dict[tuple[Any, ...], list[Row]]:
    wanted = set(keys)
    found: dict[tuple[Any, ...], list[Row]] = defaultdict(list)
    statement = ranked(
        ctx, entity, hints.narrowed(keys_hints(columns, keys)), columns, keys, options
    )
    for row in ctx.session.execute(statement).mappings():
        key = tuple(row[c] for c in columns)
        if key in wanted:
            found[key].append(row)
    return found


# --- time windows for observations --------------------------------------------------------


def time_ordered(entity: EntitySet, options: Options) -> bool | None:
    """For Observations ordered by phenomenonTime first: whether newest first; else None."""
    if entity.name != "Observations":
        return None
    if not options.orderby:
        return False
    first = options.orderby[0]
    expression = first.expression
    if isinstance(expression, ast.Identifier) and expression.name == "phenomenonTime":
        return first.descending
    return None


def data_edges(ctx: Context, hints: Hints) -> tuple[int, int] | None:
    """The oldest and newest hour with data of the cameras the hints allow (one index
    lookup per camera and end), or None when they have no data."""
    bucket = CameraRollup.bucket_start_s

    def per_camera(edge: Any) -> Any:
        return (
            select(edge(bucket))
            .where(CameraRollup.granularity_s == 3600, CameraRollup.camera_id == Camera.id)
            .scalar_subquery()
        )

    statement = (
        select(func.min(per_camera(func.min)), func.max(per_camera(func.max)))
        .select_from(Camera)
        .join(Site, Site.id == Camera.site_id)
        .where(Site.public.is_(True))
    )
    for column, name in ((Camera.id, "camera_id"), (Camera.site_id, "site_id")):
        values = hints.get(name)
        if values is not None:
            statement = statement.where(column.in_(sorted(map(str, values))))
    oldest, newest = ctx.session.execute(statement).one()
    return None if oldest is None else (int(oldest), int(newest))


def windows(ctx: Context, hints: Hints, newest: bool) -> Iterator[Hints]:
    """The hints narrowed to ever wider windows from the data's newest (or oldest) end,
    up to the first that holds all of the data."""
    edges = data_edges(ctx, hints)
    if edges is None:
        yield hints
        return
    oldest, latest = edges
    if hints.start_hi is not None:
        latest = min(latest, hints.start_hi)
    if hints.start_lo is not None:
        oldest = max(oldest, hints.start_lo)
    for width in WINDOWS:
        if width is None or latest - oldest < width:
            yield hints
            return
        yield hints.within(latest - width, None) if newest else hints.within(None, oldest + width)


def page_rows(
    ctx: Context,
    entity: EntitySet,
    hints: Hints,
    restriction: Mapping[str, object],
    options: Options,
) -> list[Row]:
    newest = time_ordered(entity, options)
    if newest is None:
        return flat_page(ctx, entity, hints, restriction, options)
    rows: list[Row] = []
    for window in windows(ctx, hints, newest):
        rows = flat_page(ctx, entity, window, restriction, options)
        if len(rows) > options.top:
            break
    return rows


def children_rows(
    ctx: Context,
    entity: EntitySet,
    columns: Sequence[str],
    keys: Sequence[tuple[Any, ...]],
    options: Options,
) -> dict[tuple[Any, ...], list[Row]]:
    hints = filter_hints(entity, options.filter)
    newest = time_ordered(entity, options)
    if newest is None or options.count:
        return grouped(ctx, entity, hints, columns, keys, options)
    found: dict[tuple[Any, ...], list[Row]] = {}
    wanted = list(keys)
    for window in windows(ctx, hints.narrowed(keys_hints(columns, keys)), newest):
        rows = grouped(ctx, entity, window, columns, wanted, options)
        found.update(rows)
        wanted = [k for k in wanted if len(rows.get(k, ())) <= options.top]
        if not wanted:
            break
    return found


# --- rendering ---------------------------------------------------------------------------


@dataclass
class Renderer:
    """Builds the JSON of entities and their expansions within one response's budget."""

    ctx: Context
    budget: Budget = field(init=False)

    def __post_init__(self) -> None:
        self.budget = Budget(self.ctx.settings.open_max_rows)

    def entities(self, entity: EntitySet, rows: list[Row], options: Options) -> list[Any]:
        self.budget.spend(len(rows))
        check_select(entity, options)
        expanded = {item.nav: self.expansion(entity, rows, item) for item in options.expand}
        return [self.entity(entity, row, options, expanded) for row in rows]

    def entity(
        self,
        entity: EntitySet,
        row: Row,
        options: Options,
        expanded: Mapping[str, Mapping[tuple[Any, ...], Any]],
    ) -> dict[str, Any]:
        link = self_link(self.ctx, entity, row)
        out: dict[str, Any] = {"@iot.selfLink": link, "@iot.id": entity.entity_id(row)}
        out |= entity.render(row)
        out |= {f"{nav}@iot.navigationLink": f"{link}/{nav}" for nav in entity.navs}
        if options.select is not None:
            out = {k: v for k, v in out.items() if selected(k, options.select)}
        for item in options.expand:
            nav = entity.navs[item.nav]
            key = tuple(row[s] for s, _ in nav.pairs)
            out |= expansion_json(link, item, nav, expanded[item.nav].get(key))
        return out

    def expansion(
        self, entity: EntitySet, rows: list[Row], item: Expand
    ) -> dict[tuple[Any, ...], Any]:
        """Per parent key: the expanded entity (to-one), or its children and their Page
        (to-many); every parent's children are fetched, and expanded further, together."""
        nav = entity.navs.get(item.nav)
        if nav is None:
            raise QueryError(f"{entity.singular} has no navigation property {item.nav!r}")
        target = ENTITY_SETS[nav.target]
        sources, columns = [s for s, _ in nav.pairs], [t for _, t in nav.pairs]
        keys = sorted({tuple(row[s] for s in sources) for row in rows}, key=str)
        options = item.options if nav.many else replace(item.options, top=1, skip=0)
        found = children_rows(self.ctx, target, columns, keys, options) if keys else {}
        pages = {k: page_of(found.get(k, []), options) for k in keys}
        rendered = iter(self.entities(target, [r for p in pages.values() for r in p.rows], options))
        children = {k: [next(rendered) for _ in page.rows] for k, page in pages.items()}
        if not nav.many:
            return {k: one[0] for k, one in children.items() if one}
        return {k: (children[k], pages[k]) for k in keys}


def page_of(rows: list[Row], options: Options) -> Page:
    """A parent's ranked children as a page (one extra row says there are more)."""
    total = int(rows[0]["sta_total"]) if options.count and rows else 0
    return Page(rows[: options.top], len(rows) > options.top, total)


def selected(key: str, names: frozenset[str]) -> bool:
    """Whether an output member survives $select (`id` selects @iot.id; a navigation
    property selects its link)."""
    if key == "@iot.id":
        return bool(names & {"id", "@iot.id"})
    return key.removesuffix("@iot.navigationLink") in names


def check_select(entity: EntitySet, options: Options) -> None:
    if options.select is None:
        return
    known = {*entity.fields, *entity.navs, "id", "@iot.id", "@iot.selfLink"}
    unknown = sorted(options.select - known)
    if unknown:
        raise QueryError(f"{entity.singular} has no property {', '.join(unknown)} to select")


def expansion_json(link: str, item: Expand, nav: Nav, found: Any) -> dict[str, Any]:
    if not nav.many:
        return {item.nav: found} if found is not None else {}
    children, page = found
    out: dict[str, Any] = {item.nav: children}
    if item.options.count:
        out[f"{item.nav}@iot.count"] = page.total
    if page.more:
        next_page = item.options.page(item.options.skip + item.options.top)
        out[f"{item.nav}@iot.nextLink"] = f"{link}/{item.nav}?{query_string(next_page)}"
    return out


# --- resource paths ----------------------------------------------------------------------


@dataclass
class Address:
    """What a resource path names: a collection of an entity set (restricted by the path),
    one entity, or one property of it ($value: its raw value; $ref: links only)."""

    entity: EntitySet
    restriction: dict[str, object]
    path: str
    single: bool
    property: str | None = None
    raw_value: bool = False
    ref: bool = False


def segments(resource: str) -> list[tuple[str, str | None]]:
    parts = []
    for part in resource.strip("/").split("/"):
        match = SEGMENT.match(part)
        if match is None:
            raise NotFoundError(f"no resource {part!r}")
        entity_id = match.group("id")
        if entity_id is not None and entity_id.startswith("'"):
            entity_id = entity_id[1:-1].replace("''", "'")
        parts.append((match.group("name"), entity_id))
    return parts


def with_id(entity: EntitySet, restriction: dict[str, object], entity_id: str) -> dict[str, object]:
    found = entity.restriction(entity_id)
    if found is None:
        raise NotFoundError(f"no {entity.singular} {entity_id!r}")
    for column, wanted in found.items():
        if restriction.get(column, wanted) != wanted:
            raise NotFoundError(f"no {entity.singular} {entity_id!r} here")
    return restriction | found


def one_row(ctx: Context, entity: EntitySet, restriction: Mapping[str, object]) -> Row:
    view = view_of(ctx, entity, hints_for(restriction))
    statement = select(view).where(*(view.c[c] == v for c, v in restriction.items())).limit(2)
    rows = list(ctx.session.execute(statement).mappings())
    if len(rows) != 1:
        raise NotFoundError(f"no such {entity.singular}")
    return rows[0]


def address(ctx: Context, resource: str) -> Address:
    parts = segments(resource)
    name, entity_id = parts[0]
    entity = ENTITY_SETS.get(name)
    if entity is None:
        raise NotFoundError(f"no entity set {name!r}")
    restriction = with_id(entity, {}, entity_id) if entity_id is not None else {}
    where = Address(entity, restriction, name, entity_id is not None)
    if where.single:
        where.path = f"{name}({quoted(entity_id or '')})"
    for name, entity_id in parts[1:]:
        where = step(ctx, where, name, entity_id)
    return where


def step(ctx: Context, where: Address, name: str, entity_id: str | None) -> Address:
    """The address one path segment further."""
    if where.ref or where.raw_value:
        raise NotFoundError(f"nothing follows {'$ref' if where.ref else '$value'}")
    if name == "$ref" and where.property is None:
        return replace(where, ref=True)
    if name == "$value" and where.property is not None:
        return replace(where, raw_value=True)
    if not where.single or where.property is not None or name.startswith("$"):
        raise NotFoundError(f"no resource {name!r} here")
    entity = where.entity
    if name in entity.fields and entity_id is None:
        return replace(where, property=name)
    nav = entity.navs.get(name)
    if nav is None:
        raise NotFoundError(f"{entity.singular} has no property {name!r}")
    row = one_row(ctx, entity, where.restriction)
    target = ENTITY_SETS[nav.target]
    restriction = {t: row[s] for s, t in nav.pairs}
    path = f"{where.path}/{name}"
    if entity_id is not None:
        if not nav.many:
            raise NotFoundError(f"{name} is one entity; it takes no id")
        return Address(target, with_id(target, restriction, entity_id), path, True)
    return Address(target, restriction, path, not nav.many)


# --- answers -----------------------------------------------------------------------------


def service_root(ctx: Context) -> dict[str, Any]:
    settings = ctx.settings
    return {
        "value": [{"name": name, "url": f"{ctx.root}/{name}"} for name in sorted(ENTITY_SETS)],
        "serverSettings": {"conformance": list(CONFORMANCE)},
        "licence": {"id": settings.open_licence_id, "url": settings.open_licence_url},
        "attribution": settings.open_attribution,
    }


def without_jit(ctx: Context) -> None:
    """PostgreSQL's JIT compiler would spend seconds compiling each view (their row
    estimates are far too high for it to judge) to save milliseconds running it."""
    if ctx.session.get_bind().dialect.name == "postgresql":
        ctx.session.execute(text("SET LOCAL jit = off"))


def answer(ctx: Context, resource: str, params: Mapping[str, str]) -> Any:
    """The JSON payload for GET `resource` with query `params`; a str for $value."""
    if not resource.strip("/"):
        return service_root(ctx)
    without_jit(ctx)
    where = address(ctx, resource)
    options = parse_options(params)
    renderer = Renderer(ctx)
    if not where.single:
        return collection(renderer, where, options)
    row = one_row(ctx, where.entity, where.restriction)
    if where.ref:
        return {"@iot.selfLink": self_link(ctx, where.entity, row)}
    if where.property is None:
        return renderer.entities(where.entity, [row], options)[0]
    body = renderer.entities(where.entity, [row], Options())[0]
    found = body["@iot.id"] if where.property == "id" else body.get(where.property)
    if where.raw_value:
        return found if isinstance(found, str) else json.dumps(found)
    return {where.property: found}


def collection(renderer: Renderer, where: Address, options: Options) -> dict[str, Any]:
    ctx, entity = renderer.ctx, where.entity
    hints = hints_for(where.restriction).narrowed(filter_hints(entity, options.filter))
    rows = page_rows(ctx, entity, hints, where.restriction, options)
    out: dict[str, Any] = {}
    if options.count:
        out["@iot.count"] = count_of(ctx, entity, hints, where.restriction, options)
    more = len(rows) > options.top > 0
    rows = rows[: options.top]
    if more:
        next_page = options.page(options.skip + options.top)
        out["@iot.nextLink"] = f"{ctx.root}/{where.path}?{query_string(next_page)}"
    if where.ref:
        out["value"] = [{"@iot.selfLink": self_link(ctx, entity, row)} for row in rows]
    else:
        out["value"] = renderer.entities(entity, rows, options)
    return out
