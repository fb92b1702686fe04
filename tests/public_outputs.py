"""Every public document about the evaluation month (``evaluation_world.py``), fetched and
read the way a strict client reads it: XML by ElementTree, JSON by ``json.loads``, CSV by the
csv module (every line as wide as the header, no cell a spreadsheet would run as a formula)."""

from __future__ import annotations

import csv
import io
import json
from xml.etree import ElementTree

# The month's cases lie in November 2026; GeoReport windows are at most 90 days.
OPEN311_WINDOW = "start_date=2026-10-15T00:00:00Z&end_date=2026-12-31T00:00:00Z"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
STATS_TABLES = ("regions", "departments", "people", "categories")


def is_formula(cell: str) -> bool:
    """Whether a spreadsheet would run ``cell``: it starts a formula and is not a number."""
    if not cell.startswith(FORMULA_STARTS):
        return False
    try:
        float(cell)
    except ValueError:
        return True
    return False


def read_csv(body: str) -> list[dict]:
    """The rows of a CSV document, checked: same width everywhere, no formula cell."""
    lines = list(csv.reader(io.StringIO(body, newline="")))
    header = lines[0]
    for line in lines:
        assert len(line) == len(header), (header, line)
        formulas = [cell for cell in line if is_formula(cell)]
        assert not formulas, formulas
    return [dict(zip(header, line, strict=True)) for line in lines[1:]]


def _get(client, url: str, headers: dict | None = None):
    response = client.get(url, headers=headers or {})
    assert response.status_code == 200, (url, response.data[:500])
    return response


def public_documents(client, case_code: str, stats_headers: dict) -> dict[str, object]:
    """Every public output, parsed, by URL: GeoReport lists and one request (JSON and XML,
    with and without extensions), open data (CSV, GeoJSON, boundaries), the statistics CSVs."""
    documents: dict[str, object] = {}
    for fmt in ("json", "xml"):
        for url in (f"/open311/v2/requests.{fmt}?{OPEN311_WINDOW}",
                    f"/open311/v2/requests.{fmt}?{OPEN311_WINDOW}&extensions=true",
                    f"/open311/v2/requests/{case_code}.{fmt}",
                    f"/open311/v2/requests/{case_code}.{fmt}?extensions=true",
                    f"/open311/v2/servicerequestupdates.{fmt}?{OPEN311_WINDOW}",
                    f"/open311/v2/services.{fmt}"):
            body = _get(client, url).data
            documents[url] = ElementTree.fromstring(body) if fmt == "xml" else json.loads(body)
    for url in ("/open-data/cases.geojson", "/open-data/regions.geojson?level=grid",
                "/open-data/regions.geojson?level=street"):
        documents[url] = json.loads(_get(client, url).data)
    documents["/open-data/cases.csv"] = read_csv(
        _get(client, "/open-data/cases.csv").get_data(as_text=True))
    for table in STATS_TABLES:
        url = f"/api/v1/stats/{table}?period=2026-11&format=csv"
        documents[url] = read_csv(_get(client, url, stats_headers).get_data(as_text=True))
    return documents
