"""A phone or map client reads regions and locates points through /api/v1."""

from __future__ import annotations

import pytest
from test_grids_generate import CELL, YUZHONG, load_yuzhong

from gridmgr.geo.coords import from_wgs84
from gridmgr.grids.generation import generate_grids

JIEFANGBEI = (106.5770, 29.5570)


@pytest.fixture
def yuzhong_grids(app_ctx, data_dir):
    load_yuzhong(data_dir)
    return generate_grids(within="district", cell_area_m2=CELL).generated[YUZHONG]


def error_code(response) -> str:
    return response.get_json()["error"]["code"]


def test_regions_come_as_a_feature_collection_filtered_by_level_and_parent(client,
                                                                         yuzhong_grids):
    districts = client.get("/api/v1/regions?level=district").get_json()
    assert districts["type"] == "FeatureCollection"
    [district] = districts["features"]
    assert district["type"] == "Feature" and district["id"] == YUZHONG
    assert district["geometry"]["type"] == "MultiPolygon"
    assert district["properties"]["name"] == "渝中区" and district["properties"]["parent"] is None

    children = client.get(f"/api/v1/regions?parent={YUZHONG}&limit=5000").get_json()
    assert len(children["features"]) == yuzhong_grids and not children["truncated"]
    codes = [f["id"] for f in children["features"]]
    assert codes == sorted(codes) and all(len(c) == 15 for c in codes)
    assert {f["properties"]["parent"] for f in children["features"]} == {YUZHONG}

    page = client.get("/api/v1/regions?level=grid&limit=10").get_json()
    assert len(page["features"]) == 10 and page["truncated"] is True

    near = client.get("/api/v1/regions?level=grid&bbox=106.5765,29.5565,106.5775,29.5575")
    assert 1 <= len(near.get_json()["features"]) <= 6
    assert client.get("/api/v1/regions?city=nowhere").get_json()["features"] == []


def test_one_region_by_code_and_unknown_codes(client, yuzhong_grids):
    grid = client.get(f"/api/v1/regions/{YUZHONG}000000001")
    assert grid.status_code == 200
    assert grid.get_json()["properties"]["level"] == "grid"
    assert client.get(f"/api/v1/regions/{YUZHONG}?city=cq").get_json()["properties"]["name"] \
        == "渝中区"

    missing = client.get("/api/v1/regions/500199")
    assert missing.status_code == 404 and error_code(missing) == "unknown_region"
    bad = client.get("/api/v1/regions/50010x")
    assert bad.status_code == 422 and error_code(bad) == "bad_region_code"
    unknown_parent = client.get("/api/v1/regions?parent=500199")
    assert unknown_parent.status_code == 404 and error_code(unknown_parent) == "unknown_region"


@pytest.mark.parametrize("query", ["level=province", "parent=12", "limit=0", "limit=99999",
                                   "bbox=1,2,3", "bbox=a,b,c,d", "bbox=3,2,1,4"])
def test_bad_region_queries_are_refused(client, app_ctx, query):
    response = client.get(f"/api/v1/regions?{query}")
    assert response.status_code == 422
    assert error_code(response) in {"invalid_input", "bad_bbox"}
    assert response.get_json()["error"]["message"]


def test_locating_one_point_by_query(client, yuzhong_grids):
    found = client.get(f"/api/v1/locate?lon={JIEFANGBEI[0]}&lat={JIEFANGBEI[1]}")
    assert found.status_code == 200
    body = found.get_json()
    assert body["region"]["level"] == "grid" and body["region"]["code"].startswith(YUZHONG)
    assert [a["code"] for a in body["ancestors"]] == [YUZHONG]

    # The same place as a Chinese web map (GCJ-02) gives it: the same grid.
    gcj = from_wgs84(*JIEFANGBEI, "gcj02")
    shifted = client.get(f"/api/v1/locate?lon={gcj[0]}&lat={gcj[1]}&coord_sys=gcj02")
    assert shifted.get_json()["region"] == body["region"]

    outside = client.get("/api/v1/locate?lon=116.397&lat=39.909")
    assert outside.status_code == 422 and error_code(outside) == "outside_city"
    for query in ("lon=106.5", "lon=500&lat=29", "lon=x&lat=29", "lon=106&lat=29&coord_sys=utm"):
        refused = client.get(f"/api/v1/locate?{query}")
        assert refused.status_code == 422 and error_code(refused) == "invalid_input"


def test_locating_a_batch_of_points(client, yuzhong_grids):
    single = client.get(f"/api/v1/locate?lon={JIEFANGBEI[0]}&lat={JIEFANGBEI[1]}").get_json()
    response = client.post("/api/v1/locate", json={
        "points": [list(JIEFANGBEI), [116.397, 39.909], list(JIEFANGBEI)]})
    assert response.status_code == 200
    first, outside, again = response.get_json()["results"]
    assert first["region"] == single["region"] == again["region"]
    assert first["ancestors"] == single["ancestors"]
    assert outside["error"]["code"] == "outside_city"


@pytest.mark.parametrize("body", [{}, {"points": []}, {"points": [[1, 2, 3]]},
                                  {"points": [["a", 2]]}, {"points": [[200, 10]]},
                                  {"points": [[1, 2]] * 10_001},
                                  {"points": [[1, 2]], "coord_sys": "mars"}])
def test_bad_batches_are_refused(client, app_ctx, body):
    response = client.post("/api/v1/locate", json=body)
    assert response.status_code == 422
    assert error_code(response) in {"invalid_input", "bad_points", "bad_batch_size"}


def test_the_api_is_documented(client, app_ctx):
    spec = client.get("/api/v1/openapi.json").get_json()
    for path in ("/api/v1/regions", "/api/v1/regions/{code}", "/api/v1/locate"):
        assert path in spec["paths"]
    assert {"get", "post"} <= set(spec["paths"]["/api/v1/locate"])
    assert "422" in spec["paths"]["/api/v1/locate"]["get"]["responses"]
    assert "404" in spec["paths"]["/api/v1/regions/{code}"]["get"]["responses"]
