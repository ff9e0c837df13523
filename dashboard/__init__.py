"""Tally's planner dashboard: a static single-page app (static/) served by the API at `/`.

Everything it needs is in static/, libraries included (static/vendor/), so it works with no
internet access. It only reads the planner and open-data endpoints, and shows no imagery.
"""
