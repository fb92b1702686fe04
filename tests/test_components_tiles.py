"""Components (部件) as vector tiles: a phone reads them from zoom 15 (public fields for anyone,
the parties for staff in scope), and the wall draws its scope's components in Chromium."""

from __future__ import annotations

import base64
import json
import time

import mapbox_vector_tile
from browsers import browser_fixture, chromium, record_problems, refuse_other_hosts, wait_until  # noqa: F401
from live_server import running_server
from maps_city import STREET_A, STREET_B, build_city, tile_of, wall_sign_in
from test_wall_browser import FETCH_BASE64

from gridmgr.components.importing import import_components

PASSWORD = "pw-secret-123"
LAMP_A = "1101010111000001"
LAMP_B = "1101010111000002"


def _lamps(tmp_path):
    """The wall's city with one lamp in each street, both owned by the power company."""
    city = build_city()
    places = {LAMP_A: city.grid_centre(STREET_A, 1, 1, 1),
              LAMP_B: city.grid_centre(STREET_B, 1, 1, 1)}
    features = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": list(place)},
                 "properties": {"code": code, "name": f"路灯 {code[-1]}", "category": "C0111",
                                "owner": "供电公司", "state": "damaged"}}
                for code, place in places.items()]
    path = tmp_path / "lamps.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    import_components(path)
    return city, places


def _features(body: bytes) -> list[dict]:
    return mapbox_vector_tile.decode(body).get("components", {}).get("features", []) if body else []


def _tile(place: tuple[float, float], z: int) -> str:
    x, y = tile_of(*place, z)
    return f"{z}/{x}/{y}.pbf"


def test_a_phone_reads_component_tiles_from_zoom_15_and_only_staff_see_the_owner(
        app_ctx, client, make_user, auth_headers, tmp_path):
    _city, places = _lamps(tmp_path)
    path = "/api/v1/components/tiles/" + _tile(places[LAMP_A], 16)

    anonymous = client.get(path)
    assert anonymous.status_code == 200
    assert anonymous.mimetype == "application/vnd.mapbox-vector-tile"
    [lamp] = _features(anonymous.data)
    assert lamp["properties"]["code"] == LAMP_A and lamp["properties"]["state"] == "damaged"
    assert lamp["properties"]["category"] == "C0111"
    assert "owner" not in lamp["properties"] and "department" not in lamp["properties"]

    operator = make_user("operator")
    [seen] = _features(client.get(path, headers=auth_headers(operator)).data)
    assert seen["properties"]["owner"] == "供电公司"
    # Staff of the other street read the lamp's public fields, not its parties.
    other_street = make_user("operator", username="street-b", region_code=STREET_B)
    [outside] = _features(client.get(path, headers=auth_headers(other_street)).data)
    assert "owner" not in outside["properties"]

    zoomed_out = client.get("/api/v1/components/tiles/" + _tile(places[LAMP_A], 14))
    assert zoomed_out.status_code == 200 and zoomed_out.data == b""


def test_a_tile_that_does_not_exist_is_refused_with_its_reason(app_ctx, client, tmp_path):
    _lamps(tmp_path)
    beyond = client.get("/api/v1/components/tiles/16/70000/1.pbf")
    assert beyond.status_code == 400 and beyond.get_json()["error"]["code"] == "bad_tile_xy"
    words = client.get("/api/v1/components/tiles/16/x/1.pbf")
    assert words.status_code == 400 and words.get_json()["error"]["code"] == "bad_tile_address"


def test_a_street_centre_sees_its_own_street_s_components_on_the_wall_and_no_other(
        app_ctx, client, make_user, tmp_path):
    city, places = _lamps(tmp_path)
    make_user("duty_chief", username="chief-a", region_code=STREET_A,
              password=PASSWORD)
    assert wall_sign_in(client, "chief-a", PASSWORD).status_code == 302

    own = client.get("/maps/tiles/components/" + _tile(places[LAMP_A], 16))
    [lamp] = _features(own.data)
    assert lamp["properties"]["code"] == LAMP_A and lamp["properties"]["owner"] == "供电公司"
    other = client.get("/maps/tiles/components/" + _tile(places[LAMP_B], 16))
    assert other.status_code == 200 and _features(other.data) == []


@chromium
def test_the_wall_draws_the_component_layer_when_zoomed_in_on_a_street(
        app_ctx, app, make_user, tmp_path, browser):
    city, places = _lamps(tmp_path)
    make_user("duty_chief", username="chief", city_id=city.city.id, password=PASSWORD)
    with running_server(app, tmp_path / "server") as server:
        page = browser.new_page(viewport={"width": 1280, "height": 800}, locale="zh-CN")
        foreign = refuse_other_hosts(page.context, server)
        problems, tiles = record_problems(page, [], console=False), []
        page.on("response", lambda r: "/maps/tiles/components/" in r.url and tiles.append(r))
        page.goto(server.url + "/wall")
        page.fill("input[name=username]", "chief")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("body[data-wall-ready='1']", state="attached", timeout=15_000)
        assert tiles == []  # the city's overview is below zoom 15: no component tile asked

        lon, lat = places[LAMP_A]
        page.evaluate(f"void gridWall.map.setView([{lat}, {lon}], 17, {{animate: false}})")
        wait_until(page, "gridWall.componentsDrawn > 0", 10_000)
        deadline = time.monotonic() + 5
        while not tiles and time.monotonic() < deadline:
            time.sleep(0.05)
        assert tiles and all(t.status == 200 for t in tiles)
        bodies = [base64.b64decode(b) for b in page.evaluate(FETCH_BASE64, [t.url for t in tiles])]
        codes = {f["properties"]["code"] for b in bodies for f in _features(b)}
        assert LAMP_A in codes
        page.context.close()
        assert problems == []
        assert foreign == []
