"""CSV injection (issue #9): names and roads that a spreadsheet would run as formulas, and bare
carriage returns, must not reach the CSV feeds as they are."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from readkit import SiteSpec, create_site, post, recent_hour, report

MAIN = {"main": {"up": "northbound", "down": "southbound"}}


def quoted(fields: list[str]) -> str:
    """A record with every field quoted (QUOTE_ALL)."""
    return ",".join('"' + f.replace('"', '""') + '"' for f in fields)


def records(text: str) -> list[list[str]]:
    """CSV as a spreadsheet import would split it (line breaks inside quotes stay inside)."""
    return list(csv.reader(io.StringIO(text, newline="")))


@pytest.mark.parametrize(
    ("name", "road", "published_name", "published_road"),
    [
        (
            '=HYPERLINK("http://evil.example","x")',
            "A1",
            '\'=HYPERLINK("http://evil.example","x")',
            "A1",
        ),
        ("@SUM(A1:A9)", "+44 20 7946", "'@SUM(A1:A9)", "'+44 20 7946"),
        ("-2+3", "\tcmd", "'-2+3", "'\tcmd"),
        ("Mill\rLane", "\rB2", "Mill\rLane", "'\rB2"),
        ("Line\nBreak", "plain", "Line\nBreak", "plain"),
    ],
)
def test_sites_csv_neutralises_formulas_and_quotes_every_field(
    app: FastAPI,
    client: TestClient,
    name: str,
    road: str,
    published_name: str,
    published_road: str,
) -> None:
    site, _ = create_site(app.state.settings, SiteSpec({"a": MAIN}, name=name, road=road))
    text = client.get("/api/v1/open/sites.csv").text
    rows = records(text)
    header = rows[0]
    (row,) = [r for r in rows[1:] if r[0] == site]
    assert row[header.index("name")] == published_name
    assert row[header.index("road")] == published_road
    assert row[header.index("lon")] == "-0.1"  # a negative number is not a formula
    assert quoted(row) + "\n" in text  # every field quoted, so \r and \n stay inside


def test_counts_csv_quotes_every_field(app: FastAPI, client: TestClient) -> None:
    site, cams = create_site(app.state.settings, SiteSpec({"a": MAIN}))
    start = recent_hour(4)
    camera = cams["a"]
    post(client, camera, [report(camera.camera, start, {("main", "northbound", "car"): 6})])
    text = client.get(
        f"/api/v1/open/sites/{site}/counts.csv",
        params={
            "from": start.isoformat(),
            "to": (start + timedelta(hours=1)).isoformat(),
            "granularity": "15min",
        },
    ).text
    lines = text.splitlines()
    assert len(lines) == 2
    for line in lines:
        assert line == quoted(records(line)[0])
    assert records(text)[1][7] == "6"
