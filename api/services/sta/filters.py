"""`$filter` and `$orderby` compiled to SQL on an entity set's view.

odata-query parses the expression and its SQLAlchemy Core visitor supplies literals,
arithmetic, logic and the string and math functions; this subclass adds what SensorThings
needs on top: property paths through navigation properties (a collection on the way means
"any of them", an EXISTS), time intervals compared as FROST-Server compares them, moments
as epoch seconds, and the spatial functions, evaluated with shapely on the public sites'
points (sites are few) and handed to SQL as the list of sites that match.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any

import shapely
from odata_query import ast
from odata_query.exceptions import ODataException
from odata_query.sqlalchemy.core import AstToSqlAlchemyCoreVisitor
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry
from sqlalchemy import (
    Boolean,
    ColumnElement,
    Float,
    Integer,
    Numeric,
    String,
    and_,
    case,
    exists,
    false,
    literal,
    not_,
    null,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.sql.selectable import FromClause, Subquery
from sqlalchemy.sql.sqltypes import NullType

from api.params import EARLIEST, LATEST
from api.services.sta.context import Context, Hints
from api.services.sta.model import ENTITY_SETS, EntitySet, Field, default_order, hints_for
from api.services.sta.options import OrderItem, QueryError
from api.services.sta.sqlfuncs import EPOCH, EpochSeconds, utc_day, utc_month, utc_year
from api.services.sta.views import LEVEL_SECONDS

DAY_S = 86400
Hop = tuple[FromClause, ColumnElement[bool]]
Predicate = Callable[[BaseGeometry, BaseGeometry], bool]
SPATIAL: dict[str, Predicate] = {
    "st_equals": lambda a, b: bool(a.equals(b)),
    "st_disjoint": lambda a, b: bool(a.disjoint(b)),
    "st_touches": lambda a, b: bool(a.touches(b)),
    "st_within": lambda a, b: bool(a.within(b)),
    "st_overlaps": lambda a, b: bool(a.overlaps(b)),
    "st_crosses": lambda a, b: bool(a.crosses(b)),
    "st_intersects": lambda a, b: bool(a.intersects(b)),
    "st_contains": lambda a, b: bool(a.contains(b)),
    "intersects": lambda a, b: bool(a.intersects(b)),
}
FLIPPED = {ast.Lt: ast.Gt, ast.LtE: ast.GtE, ast.Gt: ast.Lt, ast.GtE: ast.LtE}
OPERATORS: dict[type[ast._Comparator], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


@dataclass(frozen=True)
class Interval:
    """A time interval property (phenomenonTime): two epoch-second columns."""

    start: ColumnElement[int]
    end: ColumnElement[int]


@dataclass(frozen=True)
class GeoRef:
    """A point property: the column holding the id of the site whose point it is."""

    site: ColumnElement[str]


@dataclass(frozen=True)
class Geometry:
    """A geography'...' literal."""

    shape: BaseGeometry


def kind_of(value: object) -> str:
    """What a compiled operand is, for the comparisons that make sense."""
    if isinstance(value, Interval):
        return "interval"
    if isinstance(value, GeoRef | Geometry):
        return "geo"
    if isinstance(value, list):
        return "list"
    sql_type = getattr(value, "type", None)
    kinds: tuple[tuple[tuple[type[Any], ...], str], ...] = (
        ((EpochSeconds,), "time"),
        ((NullType,), "null"),
        ((Boolean,), "bool"),
        ((String,), "string"),
        ((Integer, Float, Numeric), "number"),
    )
    return next((k for types, k in kinds if isinstance(sql_type, types)), "other")


COMPATIBLE = {
    frozenset({"time", "number"}),
    frozenset({"string"}),
    frozenset({"number"}),
    frozenset({"time"}),
    frozenset({"bool"}),
}


def comparable(left: object, right: object) -> bool:
    kinds = {kind_of(left), kind_of(right)}
    return bool(kinds & {"null", "other"}) or frozenset(kinds) in COMPATIBLE


def epoch(moment: datetime) -> float:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.timestamp()


def interval_to_instant(op: type[ast._Comparator], s: Any, e: Any, t: Any) -> Any:
    """An interval [s, e) compared with a moment, as FROST-Server compares them."""
    if op is ast.Eq:
        return and_(s == t, e == t)
    if op is ast.NotEq:
        return and_(s != t, e != t)
    if op is ast.Gt:
        return s > t
    if op is ast.GtE:
        return s >= t
    if op is ast.Lt:
        return and_(e <= t, s < t)
    return e <= t


def interval_to_interval(op: type[ast._Comparator], a: Interval, b: Interval) -> Any:
    s1, e1, s2, e2 = a.start, a.end, b.start, b.end
    rules: dict[type[ast._Comparator], Any] = {
        ast.Eq: lambda: and_(s1 == s2, e1 == e2),
        ast.NotEq: lambda: and_(s1 != s2, e1 != e2),
        ast.Gt: lambda: and_(s1 >= e2, s1 > s2),
        ast.GtE: lambda: and_(s1 >= s2, e1 >= e2),
        ast.Lt: lambda: and_(e1 <= s2, s1 < s2),
        ast.LtE: lambda: and_(s1 <= s2, e1 <= e2),
    }
    return rules[op]()


def parse_geometry(text: str) -> BaseGeometry:
    """WKT in lon/lat order, optionally with an EWKT `SRID=4326;` prefix."""
    wkt = text.split(";", 1)[1] if text.upper().startswith("SRID=") else text
    try:
        return shapely.from_wkt(wkt)
    except shapely.errors.ShapelyError as exc:
        raise QueryError(f"not a WKT geometry: {text!r}") from exc


class FilterCompiler(AstToSqlAlchemyCoreVisitor):
    """One entity set's expressions, compiled against the columns of its view."""

    def __init__(self, ctx: Context, entity: EntitySet, view: FromClause) -> None:
        super().__init__(view)  # type: ignore[arg-type]
        self.ctx = ctx
        self.entity = entity
        self.view = view
        self.frames: list[list[Hop]] = []

    # --- entry points ------------------------------------------------------------------

    def condition(self, node: ast._Node) -> ColumnElement[bool]:
        try:
            return self.predicate(node)
        except ODataException as exc:
            raise QueryError(f"$filter: {exc}") from exc

    def ordering(self, items: Sequence[OrderItem]) -> list[UnaryExpression[Any]]:
        """ORDER BY terms: the client's, then the set's own order to break ties."""
        terms = []
        for item in items:
            try:
                found = self.visit(item.expression)
            except ODataException as exc:
                raise QueryError(f"$orderby: {exc}") from exc
            if isinstance(found, Interval):
                found = found.start
            if kind_of(found) in ("geo", "list", "null"):
                raise QueryError("$orderby takes properties of the entity set itself")
            terms.append(found.desc() if item.descending else found.asc())
        return terms + [self.view.c[c].asc() for c in default_order(self.entity)]

    def predicate(self, node: ast._Node) -> ColumnElement[bool]:
        """A condition; navigation through other entities becomes EXISTS (any of them)."""
        self.frames.append([])
        try:
            found = self.visit(node)
        finally:
            hops = self.frames.pop()
        if kind_of(found) != "bool":
            raise QueryError("$filter must be a condition (a comparison or a function)")
        if not hops:
            return found  # type: ignore[no-any-return]
        inner = select(literal(1)).select_from(*(h[0] for h in hops))
        return exists(inner.where(*(h[1] for h in hops), found))

    # --- property paths ----------------------------------------------------------------

    def visit_Identifier(self, node: ast.Identifier) -> Any:  # noqa: N802
        return self.path([node.name])

    def visit_Attribute(self, node: ast.Attribute) -> Any:  # noqa: N802
        segments: list[str] = []
        current: ast._Node = node
        while isinstance(current, ast.Attribute):
            segments.insert(0, current.attr)
            current = current.owner
        if not isinstance(current, ast.Identifier):
            raise QueryError("a property path starts with a property name")
        return self.path([current.name, *segments])

    def path(self, segments: list[str]) -> Any:
        entity, columns = self.entity, self.view.c
        if len(segments) > 1 and segments[0] == entity.name and segments[0] not in entity.navs:
            segments = segments[1:]  # Masterportal writes Things/name on Things
        while segments and segments[0] in entity.navs:
            nav = entity.navs[segments.pop(0)]
            target = ENTITY_SETS[nav.target]
            alias: Subquery = target.view(self.ctx, Hints()).subquery()
            if not self.frames:
                raise QueryError("$orderby takes properties of the entity set itself")
            joined = and_(*(alias.c[t] == columns[s] for s, t in nav.pairs))
            self.frames[-1].append((alias, joined))
            entity, columns = target, alias.c
        if not segments:
            raise QueryError(f"{entity.singular} is an entity; name one of its properties")
        found = entity.fields.get(segments[0])
        if found is None:
            raise QueryError(f"{entity.singular} has no property {segments[0]!r}")
        return self.field(found, segments[1:], columns, entity)

    def field(self, found: Field, rest: list[str], columns: Any, entity: EntitySet) -> Any:
        while found.kind == "object" and rest:
            part = found.parts.get(rest.pop(0))
            if part is None:
                return null()  # an absent property is null, as in FROST-Server
            found = part
        if found.kind == "object" or rest:
            raise QueryError(f"name a single value inside {entity.singular}'s properties")
        if found.kind == "interval":
            return Interval(columns[found.columns[0]], columns[found.columns[1]])
        if found.kind == "geo":
            return GeoRef(columns[found.columns[0]])
        column = columns[found.columns[0]]
        return type_coerce(column, EPOCH) if found.kind == "time" else column

    # --- literals ----------------------------------------------------------------------

    def visit_Integer(self, node: ast.Integer) -> Any:  # noqa: N802
        """A whole number; one beyond 64 bits is no count, time or id (and no driver binds it)."""
        number = node.py_val
        if not -(2**63) <= number < 2**63:
            raise QueryError(f"number out of range: {node.val}")
        return literal(number)

    def visit_DateTime(self, node: ast.DateTime) -> Any:  # noqa: N802
        try:
            return literal(epoch(node.py_val), EPOCH)
        except (ValueError, OverflowError) as exc:
            raise QueryError(f"not a date and time: {node.val!r}") from exc

    def visit_Date(self, node: ast.Date) -> Any:  # noqa: N802
        try:
            day = node.py_val
        except ValueError as exc:
            raise QueryError(f"not a date: {node.val!r}") from exc
        return literal(int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()), EPOCH)

    def visit_Time(self, node: ast.Time) -> Any:  # noqa: N802
        moment: time = node.py_val
        return literal(moment.hour * 3600 + moment.minute * 60 + moment.second)

    def visit_Duration(self, node: ast.Duration) -> Any:  # noqa: N802
        try:
            return literal(int(node.py_val.total_seconds()))
        except ValueError as exc:
            raise QueryError(f"not a duration: {node.val!r}") from exc

    def visit_Geography(self, node: ast.Geography) -> Geometry:  # noqa: N802
        return Geometry(parse_geometry(node.val))

    # --- operators ---------------------------------------------------------------------

    def visit_BoolOp(self, node: ast.BoolOp) -> Any:  # noqa: N802
        combine = and_ if isinstance(node.op, ast.And) else or_
        return combine(self.predicate(node.left), self.predicate(node.right))

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Any:  # noqa: N802
        if isinstance(node.op, ast.Not):
            return not_(self.predicate(node.operand))
        operand = self.visit(node.operand)
        if kind_of(operand) not in ("number", "time"):
            raise QueryError("only numbers can be negated")
        return -operand

    def visit_BinOp(self, node: ast.BinOp) -> Any:  # noqa: N802
        left, right = self.visit(node.left), self.visit(node.right)
        if isinstance(left, Interval) and isinstance(node.op, ast.Add | ast.Sub):
            shift = operator.add if isinstance(node.op, ast.Add) else operator.sub
            return Interval(shift(left.start, right), shift(left.end, right))
        if isinstance(left, Interval):
            left = left.start
        if isinstance(right, Interval):
            right = right.start
        if not {kind_of(left), kind_of(right)} <= {"number", "time", "null", "other"}:
            raise QueryError("arithmetic takes numbers, times and durations")
        if isinstance(node.op, ast.Div):
            return type_coerce(left, Float) / right
        return self.visit(node.op)(left, right)

    def visit_Compare(self, node: ast.Compare) -> Any:  # noqa: N802
        left, right = self.visit(node.left), self.visit(node.right)
        op = type(node.comparator)
        if op is ast.In:
            if not isinstance(right, list) or isinstance(left, Interval | GeoRef):
                raise QueryError("'in' takes a property and a list of values")
            return left.in_(right)
        if isinstance(right, Interval) and not isinstance(left, Interval):
            left, right, op = right, left, FLIPPED.get(op, op)
        if isinstance(left, Interval):
            if isinstance(right, Interval):
                return interval_to_interval(op, left, right)
            if kind_of(right) == "null":
                return left.start.is_(None) if op is ast.Eq else left.start.is_not(None)
            if kind_of(right) not in ("time", "number"):
                raise QueryError("a time interval compares with a time or an interval")
            return interval_to_instant(op, left.start, left.end, right)
        if not comparable(left, right):
            raise QueryError(f"cannot compare {kind_of(left)} with {kind_of(right)}")
        return OPERATORS[op](left, right)

    def visit_CollectionLambda(self, node: ast.CollectionLambda) -> Any:  # noqa: N802
        raise QueryError("any() and all() are not supported; write Datastreams/name eq '...'")

    # --- functions ---------------------------------------------------------------------

    def visit_Call(self, node: ast.Call) -> Any:  # noqa: N802
        name = node.func.name.lower()
        if node.func.namespace == ("geo",) or name in SPATIAL or name == "st_relate":
            return self.spatial(name, node.args)
        if name == "substringof":
            return self._substr_function(node.args[1], node.args[0], "contains")
        return super().visit_Call(node)

    def _substr_function(self, field: ast._Node, substr: ast._Node, func: str) -> Any:
        """contains/startswith/endswith on any string property path, the pattern literal."""
        target = self.visit(field)
        if kind_of(target) not in ("string", "null"):
            raise QueryError(f"{func} takes a text property")
        if isinstance(substr, ast.String):
            return getattr(target, func)(substr.val, autoescape=True)
        return getattr(target, func)(self.visit(substr))

    def func_concat(self, *args: ast._Node) -> Any:
        first, *rest = (self.visit(a) for a in args)
        for part in rest:
            first = first + part
        return first

    def moment(self, node: ast._Node) -> Any:
        found = self.visit(node)
        if isinstance(found, Interval):
            found = found.start
        if kind_of(found) not in ("time", "number"):
            raise QueryError("a time function takes a time")
        return found

    def func_year(self, field: ast._Node) -> Any:
        return utc_year(self.moment(field))

    def func_month(self, field: ast._Node) -> Any:
        return utc_month(self.moment(field))

    def func_day(self, field: ast._Node) -> Any:
        return utc_day(self.moment(field))

    def func_hour(self, field: ast._Node) -> Any:
        return self.moment(field) % DAY_S // 3600

    def func_minute(self, field: ast._Node) -> Any:
        return self.moment(field) % 3600 // 60

    def func_second(self, field: ast._Node) -> Any:
        return self.moment(field) % 60

    def func_fractionalseconds(self, field: ast._Node) -> Any:
        self.moment(field)
        return literal(0)

    def func_totaloffsetminutes(self, field: ast._Node) -> Any:
        self.moment(field)
        return literal(0)

    def func_totalseconds(self, field: ast._Node) -> Any:
        return self.visit(field)

    def func_date(self, field: ast._Node) -> Any:
        found = self.moment(field)
        return type_coerce(found - found % DAY_S, EPOCH)

    def func_time(self, field: ast._Node) -> Any:
        return self.moment(field) % DAY_S

    def func_now(self) -> Any:
        return literal(self.ctx.now_s, EPOCH)

    def func_mindatetime(self) -> Any:
        """The earliest moment the API accepts (1970)."""
        return literal(int(EARLIEST.timestamp()), EPOCH)

    def func_maxdatetime(self) -> Any:
        """The latest moment the API accepts (2100)."""
        return literal(int(LATEST.timestamp()), EPOCH)

    def spatial(self, name: str, args: Sequence[ast._Node]) -> Any:
        """A spatial function of a site point and a literal: the sites where it holds (or,
        for geo.distance and geo.length, their values), computed here with shapely."""
        values = [self.visit(a) for a in args]
        if name == "length":
            (shape,) = values
            return literal(shape.shape.length if isinstance(shape, Geometry) else 0.0, Float)
        if name not in SPATIAL and name not in ("distance", "st_relate"):
            raise QueryError(f"unknown spatial function geo.{name}")
        first, second, *rest = values
        geo = [v for v in (first, second) if isinstance(v, GeoRef)]
        shapes = [v for v in (first, second) if isinstance(v, Geometry)]
        if len(geo) + len(shapes) != 2 or len(geo) > 1:
            raise QueryError(f"{name} takes a location property and a geography'...' literal")
        if not geo:
            return true() if self.measure(name, shapes[0].shape, shapes[1].shape, rest) else false()
        column, shape = geo[0].site, shapes[0].shape
        point_first = isinstance(first, GeoRef)

        def measured(lon: float, lat: float) -> Any:
            here = Point(lon, lat)
            if point_first:
                return self.measure(name, here, shape, rest)
            return self.measure(name, shape, here, rest)

        sites = self.ctx.site_points
        if name == "distance":
            whens = [(column == site, measured(lon, lat)) for site, lon, lat in sites]
            return case(*whens, else_=null()) if whens else null()
        matching = [site for site, lon, lat in sites if measured(lon, lat)]
        return column.in_(matching) if matching else false()

    def measure(self, name: str, a: BaseGeometry, b: BaseGeometry, rest: list[Any]) -> Any:
        try:
            if name == "distance":
                return float(a.distance(b))
            if name == "st_relate":
                pattern = rest[0].value if rest else ""
                return bool(a.relate_pattern(b, str(pattern)))
            return SPATIAL[name](a, b)
        except (shapely.errors.ShapelyError, ValueError, TypeError) as exc:
            raise QueryError(f"{name}: {exc}") from exc


def filter_hints(entity: EntitySet, node: ast._Node | None) -> Hints:
    """What an Observations filter's top-level conditions say about the time and the
    datastream, so the view prunes before it aggregates (always a superset)."""
    if node is None or entity.name != "Observations":
        return Hints()
    hints = Hints()
    for part in conjuncts(node):
        if isinstance(part, ast.Compare):
            hints = hints.narrowed(compare_hints(part))
    return hints


def conjuncts(node: ast._Node) -> list[ast._Node]:
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
        return conjuncts(node.left) + conjuncts(node.right)
    return [node]


def compare_hints(node: ast.Compare) -> Hints:
    op, left, right = type(node.comparator), node.left, node.right
    if isinstance(left, ast.DateTime | ast.String):
        left, right, op = right, left, FLIPPED.get(op, op)
    name = property_name(left)
    if name == "Datastream/id" and op is ast.Eq and isinstance(right, ast.String):
        restriction = ENTITY_SETS["Datastreams"].restriction(right.val)
        return hints_for(restriction) if restriction is not None else Hints()
    if name not in ("phenomenonTime", "resultTime") or not isinstance(right, ast.DateTime):
        return Hints()
    try:
        moment = epoch(right.py_val)
    except (ValueError, OverflowError):
        return Hints()
    low, high = math.floor(moment), math.ceil(moment) + 1
    longest = max(LEVEL_SECONDS.values())
    if name == "resultTime":  # the end: the start is up to a day earlier
        low -= longest
    bounds = {
        ast.Gt: (low, None),
        ast.GtE: (low, None),
        ast.Lt: (None, high),
        ast.LtE: (None, high),
        ast.Eq: (low, high),
    }.get(op, (None, None))
    return Hints(start_lo=bounds[0], start_hi=bounds[1])


def property_name(node: ast._Node) -> str | None:
    if isinstance(node, ast.Identifier):
        return node.name
    if isinstance(node, ast.Attribute):
        owner = property_name(node.owner)
        return None if owner is None else f"{owner}/{node.attr}"
    return None
