"""Tally's central API: device ingest, planner queries, open-data feeds and admin."""

__version__ = "0.1.0"
