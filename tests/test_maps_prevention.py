"""Prevention on the wall: next week's forecast shades the unit grids, and this week's
hotspots and recurring problems are outlined; a street's centre sees only its own street."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import mapbox_vector_tile
import pytest
from maps_city import STREET_A, STREET_B, build_city, tile_of, twelve_weeks, wall_sign_in
from sqlalchemy import text

import maps.prevention
from gridmgr.extensions import db
from gridmgr.people.tokens import encode_token
from gridmgr.prevention.operations import forecast_for

PASSWORD = "pw-secret-123"
BUSY_A = STREET_A + "001013"   # street A, community 1, south-west grid
QUIET_A = STREET_A + "001014"  # its eastern neighbour
BUSY_B = STREET_B + "001013"


def bearer(user) -> dict:
    return {"Authorization": f"Bearer {encode_token(user, 'access')}"}


@pytest.fixture
def history(app_ctx):
    """Twelve weeks of history (maps_city.twelve_weeks): each street's busy grid two cases a
    week and a burst of ten this week; street A's quiet grid a case every other week."""
    city = build_city()
    twelve_weeks(city, busy=[BUSY_A, BUSY_B], quiet=[QUIET_A])
    return city


def forecast_values(client, headers, z, lon, lat) -> dict[str, dict]:
    x, y = tile_of(lon, lat, z)
    response = client.get(f"/maps/tiles/grids/{z}/{x}/{y}.pbf?measure=forecast", headers=headers)
    assert response.status_code == 200
    if not response.data:
        return {}
    return {f["properties"]["code"]: f["properties"]
            for f in mapbox_vector_tile.decode(response.data)["grids"]["features"]}


def test_next_weeks_forecast_shades_the_grids_by_expected_cases(client, history, make_user):
    chief = make_user("duty_chief", city_id=history.city.id)
    lon, lat = history.grid_centre(STREET_A, 1, 0, 0)
    grids = forecast_values(client, bearer(chief), 14, lon, lat)
    api = {g["grid_code"]: g for g in forecast_for(chief)["grids"]}

    assert grids[BUSY_A]["value"] > grids[QUIET_A]["value"] > 0
    for code in (BUSY_A, QUIET_A):
        assert grids[code]["value"] == pytest.approx(api[code]["expected"], abs=0.01)
        assert (grids[code]["low"], grids[code]["high"]) == (api[code]["low"], api[code]["high"])
        assert grids[code]["low"] <= grids[code]["value"] <= grids[code]["high"]
    # the top categories, named in the wall's language (Chinese by default)
    top = api[BUSY_A]["categories"][0]["category"]
    name = db.session.scalar(text("SELECT name_zh FROM categories WHERE code = :c"), {"c": top})
    assert grids[BUSY_A]["top"].startswith(name)
    # a grid with no history is drawn, unshaded
    empty = STREET_A + "001001"
    assert grids[empty]["value"] == 0 and grids[empty]["top"] == ""
    english = client.get(f"/maps/tiles/grids/14/{tile_of(lon, lat, 14)[0]}/"
                         f"{tile_of(lon, lat, 14)[1]}.pbf?measure=forecast&lang=en",
                         headers=bearer(chief))
    props = {f["properties"]["code"]: f["properties"] for f in
             mapbox_vector_tile.decode(english.data)["grids"]["features"]}
    english_name = db.session.scalar(text("SELECT name_en FROM categories WHERE code = :c"),
                                     {"c": top})
    assert props[BUSY_A]["top"].startswith(english_name)


def test_a_new_case_moves_the_forecast_on_the_wall(client, history, make_user, monkeypatch):
    """The wall keeps the city's forecast for minutes (FORECAST_SECONDS); past that, a new
    case since renews it."""
    chief = make_user("duty_chief", city_id=history.city.id)
    lon, lat = history.grid_centre(STREET_A, 1, 0, 0)
    before = forecast_values(client, bearer(chief), 15, lon, lat)[QUIET_A]["value"]
    now = datetime.now(UTC)
    rows = [(QUIET_A, "C0101", now - timedelta(days=1, hours=k)) for k in range(6)]
    db.session.execute(text("""
        INSERT INTO cases (code, city_id, state, source, channel, category_id, region_id,
                           grid_code, location, created_at, updated_at, closed_at)
        SELECT :code, :city, 'closed', 'inspector', 'patrol', k.id, g.id, g.code,
               ST_PointOnSurface(g.geom), :created, :created, :created
        FROM regions g, categories k WHERE g.code = :grid AND k.code = :category"""),
        [{"code": f"N{n:08d}", "city": history.city.id, "grid": g, "category": c,
          "created": t} for n, (g, c, t) in enumerate(rows)])
    db.session.commit()
    kept = forecast_values(client, bearer(chief), 15, lon, lat)[QUIET_A]["value"]
    assert kept == before  # within FORECAST_SECONDS the wall keeps its forecast
    monkeypatch.setattr(maps.prevention, "FORECAST_SECONDS", 0)
    after = forecast_values(client, bearer(chief), 15, lon, lat)[QUIET_A]["value"]
    assert after > before


def test_hotspots_and_recurring_problems_are_outlined(client, history, make_user):
    chief = make_user("duty_chief", city_id=history.city.id)
    response = client.get("/maps/feeds/hotspots", headers=bearer(chief))
    assert response.status_code == 200
    fc = response.json
    grids = {f["properties"]["code"]: f["properties"] for f in fc["features"]}
    assert {BUSY_A, BUSY_B} <= set(grids)
    busy = grids[BUSY_A]
    burst = [h for h in busy["hotspots"] if h["category"] == "E0101"]
    assert burst and burst[0]["count"] == 10 and burst[0]["q"] < 0.05
    assert burst[0]["expected"] < 10 and burst[0]["name"]
    assert any(r["category"] == "E0101" and r["cases"] >= 10 for r in busy["recurring"])
    assert not grids.get(QUIET_A, {"hotspots": []})["hotspots"]  # ordinary weeks: no hotspot
    feature = next(f for f in fc["features"] if f["properties"]["code"] == BUSY_A)
    assert feature["geometry"]["type"] == "MultiPolygon"


def test_a_street_never_sees_another_streets_forecast_or_hotspots(client, history,
                                                                  make_user):
    street_chief = make_user("duty_chief", region_code=STREET_A, password=PASSWORD)
    response = wall_sign_in(client, street_chief.username, PASSWORD)
    assert response.status_code == 302

    hot = client.get("/maps/feeds/hotspots").json
    codes = {f["properties"]["code"] for f in hot["features"]}
    assert BUSY_A in codes and all(code.startswith(STREET_A) for code in codes)

    seen = {}
    for street in (STREET_A, STREET_B):
        for community in (1, 2):
            for col in range(4):
                for row in range(4):
                    lon, lat = history.grid_centre(street, community, col, row)
                    seen.update(forecast_values(client, {}, 15, lon, lat))
    assert len(seen) == 32 and all(code.startswith(STREET_A) for code in seen)
    assert seen[BUSY_A]["value"] > 0
    # street B's busy grid is nowhere, not even as an unshaded outline
    assert BUSY_B not in seen
    # and the API agrees with the wall on street A
    api = {g["grid_code"]: g["expected"] for g in forecast_for(street_chief)["grids"]}
    assert set(api) <= {code for code in seen}
    assert seen[BUSY_A]["value"] == pytest.approx(api[BUSY_A], abs=0.01)


def test_before_any_history_the_forecast_layer_shows_the_grids_unshaded(client, app_ctx,
                                                                        make_user):
    city = build_city()
    chief = make_user("duty_chief", city_id=city.city.id)
    grids = forecast_values(client, bearer(chief), 15, *city.grid_centre(STREET_A, 1, 0, 0))
    assert grids and all(p["value"] == 0 and p["top"] == "" for p in grids.values())
    assert client.get("/maps/feeds/hotspots", headers=bearer(chief)).json["features"] == []
