"""Unit grid vector tiles: what a command centre's map asks for, and what bad requests get."""

from __future__ import annotations

import mapbox_vector_tile
import pytest
from maps_city import STREET_A, build_city, dispatch, make_overdue, report, tile_of

from gridmgr.people.tokens import encode_token


@pytest.fixture
def city(app_ctx):
    return build_city()


@pytest.fixture
def chief(city, make_user):
    return make_user("duty_chief", city_id=city.city.id)


def bearer(user) -> dict:
    return {"Authorization": f"Bearer {encode_token(user, 'access')}"}


def get_tile(client, user, z, x, y, measure=None):
    url = f"/maps/tiles/grids/{z}/{x}/{y}.pbf" + (f"?measure={measure}" if measure else "")
    return client.get(url, headers=bearer(user))


def test_tiles_hold_the_unit_grids_with_code_name_and_measure(client, city, chief):
    (x0, y0), (x1, y1) = tile_of(116.30, 39.92, 14), tile_of(116.3399, 39.9001, 14)
    codes = set()
    for x in range(x0, x1 + 1):
        for y in range(y0, y1 + 1):
            response = get_tile(client, chief, 14, x, y)
            assert response.status_code == 200
            assert response.mimetype == "application/vnd.mapbox-vector-tile"
            features = mapbox_vector_tile.decode(response.data)["grids"]["features"]
            for feature in features:
                assert set(feature["properties"]) == {"code", "name", "value"}
                assert feature["properties"]["value"] == 0
                codes.add(feature["properties"]["code"])
    assert len(codes) == 64 and all(len(code) == 15 for code in codes)


def test_grids_are_shaded_by_open_and_overdue_cases_and_recent_reports(client, city, chief,
                                                                       make_user):
    inspector = make_user("inspector", region_code=STREET_A + "001001")
    lon, lat = city.grid_centre(STREET_A, 1, 0, 0)
    first = report(inspector, lon, lat)
    report(inspector, lon + 0.0001, lat, category="E0101", description="暴露垃圾")
    dispatch(first, chief, city.department)
    make_overdue(first)
    x, y = tile_of(lon, lat, 15)

    def values(measure):
        layers = mapbox_vector_tile.decode(get_tile(client, chief, 15, x, y, measure).data)
        return {f["properties"]["code"]: f["properties"]["value"]
                for f in layers["grids"]["features"] if f["properties"]["value"]}

    grid = STREET_A + "001013"  # south-west grid of community 1 (serials run north to south)
    assert values("open") == {grid: 2}
    assert values("overdue") == {grid: 1}
    assert values("reports7d") == {grid: 2}
    # The grid's corners lie in different z17 tiles: each draws it with the same value.
    corners = {tile_of(lon_, lat_, 17) for lon_ in (116.3001, 116.3049)
               for lat_ in (39.9001, 39.9024)}
    for cx, cy in corners:
        layers = mapbox_vector_tile.decode(get_tile(client, chief, 17, cx, cy, "open").data)
        found = [f["properties"]["value"] for f in layers["grids"]["features"]
                 if f["properties"]["code"] == grid]
        assert found == [2]


def test_a_tile_with_no_grid_is_empty_but_valid(client, city, chief):
    x, y = tile_of(-74.0, 40.7, 14)  # New York: nothing of this city there
    response = get_tile(client, chief, 14, x, y)
    assert response.status_code == 200
    assert response.data == b""
    assert mapbox_vector_tile.decode(response.data) == {}


def test_grids_are_left_out_of_tiles_too_coarse_to_show_them(client, city, chief):
    x, y = tile_of(116.31, 39.905, 10)
    response = get_tile(client, chief, 10, x, y)
    assert response.status_code == 200 and response.data == b""


@pytest.mark.parametrize(("path", "code"), [
    ("23/0/0", "bad_tile_zoom"),
    ("14/16384/0", "bad_tile_xy"),
    ("14/0/99999", "bad_tile_xy"),
    ("-1/0/0", "bad_tile_address"),
    ("14/a/0", "bad_tile_address"),
    ("14/0/1.5", "bad_tile_address"),
])
def test_bad_tile_addresses_are_refused_with_a_code(client, chief, path, code):
    response = client.get(f"/maps/tiles/grids/{path}.pbf", headers=bearer(chief))
    assert response.status_code == 400
    assert response.json["error"]["code"] == code


def test_an_unknown_measure_is_refused(client, chief):
    response = get_tile(client, chief, 14, 0, 0, measure="population")
    assert response.status_code == 400
    assert response.json["error"]["code"] == "bad_measure"


def test_tiles_need_a_signed_in_command_centre(client, city, make_user):
    assert client.get("/maps/tiles/grids/14/0/0.pbf").status_code == 401
    citizen = make_user("citizen")
    assert get_tile(client, citizen, 14, 0, 0).status_code == 403
