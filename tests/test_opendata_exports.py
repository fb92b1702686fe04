"""The public downloads cases and boundaries as open data, filtered, and the daily dump."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from open311_world import IN_EAST, IN_WEST, build_world

from gridmgr.cli import main

# When a report may be published is the privacy sweep's story (test_privacy_sweep.py).
pytestmark = pytest.mark.usefixtures("publish_at_once")


@pytest.fixture
def world(app_ctx, client):
    world = build_world()
    for service, point, extra in (("C9801", IN_WEST, {}), ("C9801", IN_EAST, {}),
                                  ("E9901", IN_WEST, {"attribute[SIZE]": "small"})):
        response = client.post("/open311/v2/requests.json", data={
            "api_key": world.api_key, "service_code": service, "lat": point[1],
            "long": point[0], **extra})
        assert response.status_code == 200, response.data
    return world


def geojson(client, url):
    response = client.get(url)
    assert response.status_code == 200, response.data
    assert response.headers["Content-Type"] == "application/geo+json; charset=utf-8"
    return json.loads(response.get_data(as_text=True))


def test_cases_as_geojson_points_with_filters(client, world):
    everything = geojson(client, "/open-data/cases.geojson")
    assert everything["type"] == "FeatureCollection"
    assert len(everything["features"]) == 3
    feature = everything["features"][0]
    assert feature["geometry"]["type"] == "Point"
    assert feature["properties"]["status"] == "open"
    assert feature["properties"]["district_code"] == "110101"
    lamps = geojson(client, "/open-data/cases.geojson?category=C9801")
    assert {f["properties"]["service_code"] for f in lamps["features"]} == {"C9801"}
    east = geojson(client, "/open-data/cases.geojson?region=110101001001002")
    assert [f["properties"]["grid_code"] for f in east["features"]] == ["110101001001002"]
    assert geojson(client, "/open-data/cases.geojson?state=closed")["features"] == []
    assert len(geojson(client, "/open-data/cases.geojson?state=open&limit=2")["features"]) == 2
    future = (datetime.now(ZoneInfo("UTC")) + timedelta(days=1)).isoformat()
    assert geojson(client, f"/open-data/cases.geojson?start_date={future.replace('+', '%2B')}"
                   )["features"] == []


def test_cases_as_csv(client, world):
    response = client.get("/open-data/cases.csv?category=E9901")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == 1
    assert rows[0]["service_code"] == "E9901" and rows[0]["category_name_zh"] == "树木倒伏"
    assert rows[0]["grid_code"] == "110101001001001"
    assert "description" not in rows[0]


@pytest.mark.parametrize("query", ["state=lost", "region=east", "limit=0", "start_date=soon"])
def test_bad_filters_are_refused(client, world, query):
    response = client.get(f"/open-data/cases.csv?{query}")
    assert response.status_code == 400
    assert response.get_json()["error"]["message"]


def test_region_boundaries_by_level(client, world):
    grids = geojson(client, "/open-data/regions.geojson?level=grid")
    assert [f["properties"]["code"] for f in grids["features"]] == [
        "110101001001001", "110101001001002"]
    assert grids["features"][0]["geometry"]["type"] == "MultiPolygon"
    assert grids["features"][0]["properties"]["parent_code"] == "110101001001"
    districts = geojson(client, "/open-data/regions.geojson")
    assert [f["properties"]["name"] for f in districts["features"]] == ["东城区"]
    assert client.get("/open-data/regions.geojson?level=planet").status_code == 400


def test_the_daily_dump_writes_the_days_cases_and_every_level(runner, world, tmp_path):
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
    result = runner.invoke(main, args=["export", "--out", str(tmp_path), "--date", today])
    assert result.exit_code == 0, result.output
    folder = tmp_path / today
    assert sorted(p.name for p in folder.iterdir()) == sorted([
        "cases.csv", "cases.geojson", "regions-district.geojson", "regions-street.geojson",
        "regions-community.geojson", "regions-grid.geojson"])
    cases = json.loads((folder / "cases.geojson").read_text(encoding="utf-8"))
    assert len(cases["features"]) == 3
    rows = list(csv.DictReader(io.StringIO((folder / "cases.csv").read_text(encoding="utf-8"))))
    assert len(rows) == 3
    empty = runner.invoke(main, args=["export", "--out", str(tmp_path), "--date", "2001-01-01"])
    assert empty.exit_code == 0
    assert json.loads((tmp_path / "2001-01-01" / "cases.geojson").read_text())["features"] == []
