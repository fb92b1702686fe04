"""Scope: a street's command centre sees its street, never another street's cases, tiles or
events; the city's centre sees the whole city."""

from __future__ import annotations

import mapbox_vector_tile
import pytest
from live_server import LiveClient, running_server, wait_for
from maps_city import STREET_A, STREET_B, build_city, report, tile_of, wall_sign_in

from gridmgr.dispatch.duty import record_position, set_duty

PASSWORD = "pw-secret-123"
WHOLE_CITY = "116.29,39.89,116.35,39.93"


@pytest.fixture
def city(app_ctx):
    return build_city()


def sign_in(client, user) -> None:
    response = wall_sign_in(client, user.username, PASSWORD)
    assert response.status_code == 302


@pytest.fixture
def two_streets(city, make_user):
    """One case and one on-duty worker in each street."""
    inspector_a = make_user("inspector", region_code=STREET_A + "001001", display_name="甲")
    inspector_b = make_user("inspector", region_code=STREET_B + "001001", display_name="乙")
    cases = {STREET_A: report(inspector_a, *city.grid_centre(STREET_A, 1, 1, 1)),
             STREET_B: report(inspector_b, *city.grid_centre(STREET_B, 1, 1, 1))}
    for inspector, street in ((inspector_a, STREET_A), (inspector_b, STREET_B)):
        set_duty(inspector, True)
        record_position(inspector, *city.grid_centre(street, 1, 2, 2))
    return cases


def test_a_street_centre_gets_only_its_own_street(client, city, two_streets, make_user):
    street_chief = make_user("duty_chief", region_code=STREET_A)
    sign_in(client, street_chief)

    markers = client.get(f"/maps/feeds/cases?bbox={WHOLE_CITY}").json["cases"]
    assert [m["id"] for m in markers] == [two_streets[STREET_A]]
    assert client.get(f"/maps/feeds/cases/{two_streets[STREET_A]}").status_code == 200
    other = client.get(f"/maps/feeds/cases/{two_streets[STREET_B]}")
    assert other.status_code == 404 and other.json["error"]["code"] == "case_not_found"
    assert client.get(f"/maps/feeds/cases/{two_streets[STREET_B]}?marker=1").json == {
        "marker": None}

    heat = client.get(f"/maps/feeds/heat?bbox={WHOLE_CITY}").json["points"]
    assert len(heat) == 1 and heat[0][1] < 116.32  # street A is the western half

    stats = client.get("/maps/feeds/stats").json
    assert stats["today"]["reported"] == 1
    assert [g["code"][:9] for g in stats["top_grids"]] == [STREET_A]

    workers = client.get("/maps/feeds/workers").json["workers"]
    assert [w["name"] for w in workers] == ["甲"] and workers[0]["online"] is True

    for level, expected in (("district", set()), ("street", {STREET_A}),
                            ("community", {STREET_A + "001", STREET_A + "002"})):
        fc = client.get(f"/maps/feeds/boundaries?level={level}&bbox={WHOLE_CITY}&zoom=14").json
        assert {f["properties"]["code"] for f in fc["features"]} == expected

    (x0, y0), (x1, y1) = tile_of(116.30, 39.92, 15), tile_of(116.3399, 39.9001, 15)
    codes = set()
    for x in range(x0, x1 + 1):
        for y in range(y0, y1 + 1):
            response = client.get(f"/maps/tiles/grids/15/{x}/{y}.pbf")
            assert response.status_code == 200
            if response.data:
                layer = mapbox_vector_tile.decode(response.data)["grids"]
                codes |= {f["properties"]["code"] for f in layer["features"]}
    assert len(codes) == 32 and all(code.startswith(STREET_A) for code in codes)


def test_the_city_centre_sees_both_streets(client, city, two_streets, make_user):
    chief = make_user("duty_chief", city_id=city.city.id)
    sign_in(client, chief)
    markers = client.get(f"/maps/feeds/cases?bbox={WHOLE_CITY}").json["cases"]
    assert sorted(m["id"] for m in markers) == sorted(two_streets.values())
    assert len(client.get("/maps/feeds/workers").json["workers"]) == 2


def test_a_street_wall_never_receives_another_streets_events(app, client, city, make_user,
                                                            tmp_path):
    street_chief = make_user("duty_chief", region_code=STREET_A)
    inspector_a = make_user("inspector", region_code=STREET_A + "001001")
    inspector_b = make_user("inspector", region_code=STREET_B + "001001")
    sign_in(client, street_chief)
    token = client.get("/maps/token").json["token"]
    with running_server(app, tmp_path / "server") as server:
        wall = LiveClient(server.url, token)
        try:
            other = report(inspector_b, *city.grid_centre(STREET_B, 2, 0, 0))
            own = report(inspector_a, *city.grid_centre(STREET_A, 2, 0, 0))
            set_duty(inspector_b, True)
            record_position(inspector_b, *city.grid_centre(STREET_B, 2, 1, 1))
            assert wait_for(lambda: wall.named("case.created"), timeout=5)
            # Events are delivered in order: once street A's later ones are here, B's would be.
            set_duty(inspector_a, True)
            assert wait_for(lambda: wall.named("worker.duty"), timeout=5)
        finally:
            wall.close()
    assert [e["id"] for e in wall.named("case.created")] == [own]
    assert other not in [e.get("id") for _, e in wall.events]
    assert wall.named("worker.position") == []
    assert [e["worker_id"] for e in wall.named("worker.duty")] == [inspector_a.id]
