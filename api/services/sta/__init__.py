"""OGC SensorThings API v1.1 (read-only) over the registry and the rollups.

Every entity set is a SQL view of our own tables (public sites only): Things, Locations,
HistoricalLocations and FeaturesOfInterest are sites, Sensors are cameras, ObservedProperties
a fixed list, Datastreams camera x line x direction x aggregation x property, and Observations
the published rollup cells (small counts withheld as the open-data feeds withhold them).
`$filter` is parsed by odata-query and compiled to SQL against those views, so filters,
ordering and paging run in the database. docs/sensorthings.md has the mapping and the
supported options.
"""
