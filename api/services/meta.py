"""Constants the dashboard reads instead of restating them: classes, bucket sizes and their
limit, the licence, the feed links and the map's base layer. No data: anyone may read it."""

from __future__ import annotations

from api import __version__
from api.responses import MapTiles, Meta
from api.services.grid import BUCKET_SECONDS, MAX_BUCKETS
from api.services.open_data import licence
from api.settings import Settings
from contract import HEAVY_VEHICLE_CLASSES, INTERVAL_CHOICES_S, VEHICLE_CLASSES


def meta(settings: Settings) -> Meta:
    """Constants and feed links for the dashboard."""
    return Meta(
        version=__version__,
        vehicle_classes=list(VEHICLE_CLASSES),
        heavy_vehicle_classes=sorted(HEAVY_VEHICLE_CLASSES),
        buckets=dict(BUCKET_SECONDS),
        max_buckets=MAX_BUCKETS,
        interval_choices=list(INTERVAL_CHOICES_S),
        licence=licence(settings),
        open_data={
            "catalog": "/api/v1/open/catalog.json",
            "sites_geojson": "/api/v1/open/sites.geojson",
            "sites_json": "/api/v1/open/sites.json",
            "sites_csv": "/api/v1/open/sites.csv",
        },
        map=MapTiles(tile_url=settings.map_tile_url, attribution=settings.map_tile_attribution),
    )
