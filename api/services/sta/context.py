"""What every SensorThings query is built with: the request's context and pruning hints."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.models import Site
from api.services.disclosure import effective_threshold
from api.settings import Settings

SitePoint = tuple[str, float, float]
"""site id, lon, lat."""


@dataclass
class Context:
    """One request: the database, the settings, the service root URL and the clock."""

    session: Session
    settings: Settings
    root: str
    """The service root, e.g. https://tally.example/sta/v1.1 (selfLinks start with it)."""
    now_s: int

    @property
    def threshold(self) -> int:
        """Counts from 1 to this minus 1 are withheld (0: none)."""
        return effective_threshold(self.settings.open_min_count)

    @cached_property
    def site_points(self) -> list[SitePoint]:
        """Every public site's point: spatial filters are evaluated on these (sites are few)."""
        rows = self.session.execute(
            select(Site.id, Site.lon, Site.lat).where(Site.public.is_(True)).order_by(Site.id)
        )
        return [(site, float(lon), float(lat)) for site, lon, lat in rows]


@dataclass(frozen=True)
class Hints:
    """What a query is known to be limited to, so a view can prune before it aggregates.

    Only ever a superset of what the query returns: the query applies its own conditions
    to the view's rows as well. `values` maps a view column to the values it may take;
    `start_lo`/`start_hi` bound an observation's phenomenon start (lo <= start < hi).
    """

    values: Mapping[str, frozenset[object]] = field(default_factory=dict)
    start_lo: int | None = None
    start_hi: int | None = None

    def get(self, column: str) -> frozenset[object] | None:
        return self.values.get(column)

    def allows(self, column: str, value: object) -> bool:
        found = self.values.get(column)
        return found is None or value in found

    def narrowed(self, other: Hints) -> Hints:
        """Both hints at once."""
        values = dict(self.values)
        for column, allowed in other.values.items():
            values[column] = values[column] & allowed if column in values else allowed
        return Hints(
            values,
            max_or_none(self.start_lo, other.start_lo),
            min_or_none(self.start_hi, other.start_hi),
        )

    def within(self, lo: int | None, hi: int | None) -> Hints:
        return replace(
            self, start_lo=max_or_none(self.start_lo, lo), start_hi=min_or_none(self.start_hi, hi)
        )


def max_or_none(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


def min_or_none(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)
