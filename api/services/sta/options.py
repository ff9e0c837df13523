"""SensorThings query options: $filter, $orderby, $select, $expand, $top, $skip, $count.

Expressions are parsed by odata-query's OData grammar; this module only splits the option
lists ($expand's nested options, comma lists), which OData delimits by parentheses and
quotes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from odata_query import ast
from odata_query.exceptions import ODataException
from odata_query.grammar import ODataLexer, ODataParser

from api.services.errors import DomainError

DEFAULT_TOP = 100
"""Entities per page when the client gives no $top (FROST-Server's default too)."""
MAX_TOP = 10_000
"""A larger $top is lowered to this: the standard's server-driven paging."""
QUERY_OPTIONS = ("$filter", "$orderby", "$select", "$expand", "$top", "$skip", "$count")
NOT_SUPPORTED = ("$resultFormat", "$search", "$apply", "$format", "$levels", "$compute")
SPATIAL_FUNCTIONS = {
    "st_equals": 2,
    "st_disjoint": 2,
    "st_touches": 2,
    "st_within": 2,
    "st_overlaps": 2,
    "st_crosses": 2,
    "st_intersects": 2,
    "st_contains": 2,
    "st_relate": 3,
    "substringof": 2,
}
"""Functions SensorThings adds to OData's (substringof is OData 3, still sent by old
clients); odata-query's grammar parses calls, its table only knows OData 4's names."""
MAX_FILTER_LENGTH = 8000
MAX_SKIP = 2**31 - 1


class QueryError(DomainError):
    """A request the SensorThings API cannot answer as asked (400, with the reason)."""


@dataclass(frozen=True)
class OrderItem:
    expression: ast._Node
    descending: bool


@dataclass(frozen=True)
class Options:
    """The query options of one collection (the request's, or one $expand item's)."""

    filter: ast._Node | None = None
    orderby: tuple[OrderItem, ...] = ()
    select: frozenset[str] | None = None
    expand: tuple[Expand, ...] = ()
    top: int = DEFAULT_TOP
    skip: int = 0
    count: bool = False
    raw: Mapping[str, str] = field(default_factory=dict)
    """The options as the client wrote them ($skip aside): nextLinks repeat them. $top is
    among them only if the client gave it, as FROST-Server does, so a client can tell a
    page the server cut (no $top in the link) from the end of the $top it asked for."""

    def page(self, skip: int) -> dict[str, str]:
        """The options of the page that starts at `skip`, as query parameters."""
        return {**self.raw, "$skip": str(skip)}


@dataclass(frozen=True)
class Expand:
    nav: str
    options: Options


def parser() -> ODataParser:
    """An OData parser that also accepts the SensorThings spatial functions."""
    instance = ODataParser()
    plain: Callable[[ast.Identifier, list[ast._Node]], ast.Call] = instance._function_call

    def function_call(func: ast.Identifier, args: list[ast._Node]) -> ast.Call:
        arity = SPATIAL_FUNCTIONS.get(func.name.lower()) if not func.namespace else None
        if arity is None:
            return plain(func, args)
        if len(args) != arity:
            raise QueryError(f"{func.name} takes {arity} arguments, not {len(args)}")
        return ast.Call(func, args)

    instance._function_call = function_call  # type: ignore[method-assign]
    return instance


def parse_expression(text: str, option: str) -> ast._Node:
    """An OData expression, or a 400 that names the option and what is wrong."""
    if len(text) > MAX_FILTER_LENGTH:
        raise QueryError(f"{option} is longer than {MAX_FILTER_LENGTH} characters")
    try:
        node: ast._Node = parser().parse(ODataLexer().tokenize(text))
    except ODataException as exc:
        raise QueryError(f"{option}: {exc}") from exc
    except (ValueError, TypeError, AttributeError, IndexError) as exc:
        raise QueryError(f"{option}: cannot parse {text!r}") from exc
    if node is None:
        raise QueryError(f"{option} is empty")
    return node


def split_top(text: str, separator: str) -> list[str]:
    """`text` split at `separator` where it is neither inside parentheses nor quotes."""
    parts, depth, quoted, start = [], 0, False, 0
    for index, char in enumerate(text):
        if char == "'":
            quoted = not quoted
        elif quoted:
            continue
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise QueryError(f"unbalanced parenthesis in {text!r}")
        elif char == separator and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    if depth or quoted:
        raise QueryError(f"unbalanced parenthesis or quote in {text!r}")
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def parse_int(name: str, value: str) -> int:
    digits = value.strip()
    if not (digits.isascii() and digits.isdigit()) or len(digits) > len(str(MAX_SKIP)):
        raise QueryError(f"{name} must be a whole number from 0 to {MAX_SKIP}, not {value!r}")
    if int(digits) > MAX_SKIP:
        raise QueryError(f"{name} must be a whole number from 0 to {MAX_SKIP}, not {value!r}")
    return int(digits)


def parse_orderby(text: str) -> tuple[OrderItem, ...]:
    items = []
    for part in split_top(text, ","):
        words = part.rsplit(None, 1)
        descending = len(words) == 2 and words[1].lower() == "desc"
        if len(words) == 2 and words[1].lower() in ("asc", "desc"):
            part = words[0]
        items.append(OrderItem(parse_expression(part, "$orderby"), descending))
    return tuple(items)


def parse_select(text: str) -> frozenset[str]:
    names = frozenset(split_top(text, ","))
    if not names:
        raise QueryError("$select is empty")
    return names


def nested_options(text: str) -> dict[str, str]:
    """`$top=1;$orderby=phenomenonTime desc` -> {'$top': '1', '$orderby': '...'}."""
    pairs = {}
    for part in split_top(text, ";"):
        name, sep, value = part.partition("=")
        if not sep:
            raise QueryError(f"expected name=value in $expand options, not {part!r}")
        pairs[name.strip()] = value.strip()
    return pairs


def expand_items(text: str) -> Iterator[Expand]:
    """Each item of an $expand list; `A/B(opts)` is `A($expand=B(opts))`."""
    for item in split_top(text, ","):
        path, paren, rest = item.partition("(")
        if paren and not rest.endswith(")"):
            raise QueryError(f"$expand item {item!r} does not end with ')'")
        options = parse_options(nested_options(rest[:-1])) if paren else Options()
        navs = [n.strip() for n in path.split("/")]
        if not all(navs):
            raise QueryError(f"$expand item {item!r} has an empty path segment")
        for nav in reversed(navs[1:]):
            options = Options(
                expand=(Expand(nav, options),), raw={"$expand": item_text(nav, options)}
            )
        yield Expand(navs[0], options)


def item_text(nav: str, options: Options) -> str:
    """An $expand item written back (nextLinks of nested collections repeat it)."""
    inner = ";".join(f"{k}={v}" for k, v in options.raw.items())
    return f"{nav}({inner})" if inner else nav


def merged(items: Iterator[Expand]) -> tuple[Expand, ...]:
    """Items naming the same navigation property merged (`Datastreams,Datastreams/Thing`)."""
    found: dict[str, Expand] = {}
    for item in items:
        seen = found.get(item.nav)
        if seen is None:
            found[item.nav] = item
            continue
        nested = merged(iter((*seen.options.expand, *item.options.expand)))
        found[item.nav] = replace(seen, options=replace(seen.options, expand=nested))
    return tuple(found.values())


def parse_options(params: Mapping[str, str]) -> Options:
    """The options of one collection from its query parameters (other parameters ignored)."""
    for name in params:
        if name in NOT_SUPPORTED:
            raise QueryError(f"{name} is not supported (see docs/sensorthings.md)")
        if name.startswith("$") and name not in QUERY_OPTIONS:
            raise QueryError(f"unknown query option {name}")
    raw = {k: params[k] for k in QUERY_OPTIONS if k in params and k != "$skip"}
    values: dict[str, Any] = {"raw": raw}
    if "$filter" in params:
        values["filter"] = parse_expression(params["$filter"], "$filter")
    if "$orderby" in params:
        values["orderby"] = parse_orderby(params["$orderby"])
    if "$select" in params:
        values["select"] = parse_select(params["$select"])
    if "$expand" in params:
        values["expand"] = merged(expand_items(params["$expand"]))
    if "$top" in params:
        values["top"] = min(parse_int("$top", params["$top"]), MAX_TOP)
        values["raw"] = raw | {"$top": str(values["top"])}
    if "$skip" in params:
        values["skip"] = parse_int("$skip", params["$skip"])
    if "$count" in params:
        if params["$count"] not in ("true", "false"):
            raise QueryError(f"$count must be true or false, not {params['$count']!r}")
        values["count"] = params["$count"] == "true"
    return Options(**values)
