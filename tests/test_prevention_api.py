"""Stories of a street acting before citizens report: hotspots, recurring problems, forecasts.

The city: two streets side by side, each one community of 2 × 4 unit grids (boxes of 0.002°):
street A (110105001) west, street B (110105002) east. Cases are inserted with their times.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from shapely.geometry import MultiPolygon, box
from sqlalchemy import text

from gridmgr.categories.models import Category, CategoryClass
from gridmgr.extensions import db
from gridmgr.grids.models import City, Region
from gridmgr.prevention.hotspots import find_hotspots, recurring_problems

CST = timezone(timedelta(hours=8))
STREET_A, STREET_B = "110105001", "110105002"
WEST, SOUTH, SIZE = 116.40, 39.90, 0.002
END = datetime(2026, 11, 23, 0, 0, tzinfo=CST)  # a Monday: the period is the week before


def _build() -> dict:
    city = City(slug="test-city", name="测试市", timezone="Asia/Shanghai")
    db.session.add(city)
    db.session.flush()
    ids: dict[str, int] = {}

    def add(level, code, shape):
        region = Region(city_id=city.id, level=level, code=code, name=f"{level} {code}",
                        parent_id=ids.get(code[:-3]), area_m2=shape.area * 9.5e9,
                        geom=f"SRID=4326;{MultiPolygon([shape]).wkt}")
        db.session.add(region)
        db.session.flush()
        ids[code] = region.id

    add("district", "110105", box(WEST, SOUTH, WEST + 4 * SIZE, SOUTH + 4 * SIZE))
    grids = {}
    for s, street in enumerate((STREET_A, STREET_B)):
        shape = box(WEST + 2 * s * SIZE, SOUTH, WEST + 2 * (s + 1) * SIZE, SOUTH + 4 * SIZE)
        add("street", street, shape)
        add("community", street + "001", shape)
        for n in range(8):
            col, row = 2 * s + n % 2, n // 2
            code = f"{street}001{n + 1:03d}"
            add("grid", code, box(WEST + col * SIZE, SOUTH + row * SIZE,
                                  WEST + (col + 1) * SIZE, SOUTH + (row + 1) * SIZE))
            grids[code] = (WEST + (col + 0.5) * SIZE, SOUTH + (row + 0.5) * SIZE)
    klass = CategoryClass(code="E01", kind="event", name_zh="市容环境", name_en="Environment")
    db.session.add(klass)
    db.session.flush()
    categories = {}
    for code in ("E0101", "E0102"):
        category = Category(code=code, class_id=klass.id, name_zh=code, name_en=code)
        db.session.add(category)
        db.session.flush()
        categories[code] = category.id
    db.session.commit()
    return {"city_id": city.id, "grids": grids, "categories": categories, "ids": ids}


def _cases(world: dict, rows: list[tuple], prefix: str = "T") -> None:
    """rows: (grid code, category code, created, state, closed_at or None)."""
    params = []
    for number, (grid, category, created, state, closed) in enumerate(rows, start=1):
        lon, lat = world["grids"][grid]
        params.append({"code": f"{prefix}{number:08d}", "city": world["city_id"], "state": state,
                       "category": world["categories"][category],
                       "region": world["ids"][grid], "grid": grid, "lon": lon, "lat": lat,
                       "created": created, "closed": closed})
    db.session.execute(text("""
        INSERT INTO cases (code, city_id, state, source, channel, category_id, region_id,
                           grid_code, location, created_at, updated_at, closed_at)
        VALUES (:code, :city, :state, 'inspector', 'patrol', :category, :region, :grid,
                ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :created, :created, :closed)"""),
        params)
    db.session.commit()


def _weeks_of_ordinary_life(world: dict, weeks: int = 13) -> list[tuple]:
    """Every grid: one or two E0101 cases a week (alternating), one E0102 every other week."""
    rows = []
    for i, grid in enumerate(sorted(world["grids"])):
        for ago in range(weeks):
            monday = END - timedelta(days=7 * (ago + 1))
            for k in range(1 + (i + ago) % 2):
                rows.append((grid, "E0101", monday + timedelta(days=1 + 2 * k, hours=10),
                             "closed", monday + timedelta(days=1 + 2 * k, hours=15)))
            if (i + ago) % 2 == 0:
                rows.append((grid, "E0102", monday + timedelta(days=3, hours=9), "filed", None))
    return rows


def test_a_planted_spike_is_a_hotspot_and_the_week_before_is_not(app_ctx):
    world = _build()
    spot = f"{STREET_A}001006"
    rows = _weeks_of_ordinary_life(world)
    monday = END - timedelta(days=7)
    rows += [(spot, "E0101", monday + timedelta(days=d % 7, hours=8 + d), "reported", None)
             for d in range(9)]
    rows += [(spot, "E0101", monday + timedelta(days=2), "cancelled", monday)] * 5
    _cases(world, rows)

    found = find_hotspots(world["city_id"], end=END)
    assert [(h["grid_code"], h["category"]) for h in found["hotspots"]] == [
        (spot, "E0101"), (spot, None)]
    first = found["hotspots"][0]
    assert first["count"] == 9 + 2  # the spike and its two ordinary cases; cancelled ones not
    assert first["expected_history"] < 2 and first["expected_neighbours"] < 2

    assert find_hotspots(world["city_id"], end=END - timedelta(days=7))["hotspots"] == []
    # a street sees its own grids only; the other street has none
    assert find_hotspots(world["city_id"], STREET_B, end=END)["hotspots"] == []


def test_the_same_problem_again_and_again_is_recurring(app_ctx):
    world = _build()
    g1, g2, g3 = f"{STREET_A}001001", f"{STREET_A}001002", f"{STREET_B}001001"
    day = END - timedelta(days=20)
    _cases(world, [
        (g1, "E0101", day, "dispatched", None),
        (g1, "E0101", day + timedelta(days=6), "filed", None),
        (g1, "E0101", day + timedelta(days=12), "reported", None),
        # back four days after it was closed
        (g2, "E0102", day, "closed", day + timedelta(days=2)),
        (g2, "E0102", day + timedelta(days=6), "reported", None),
        # two cases, far apart from any closing: not recurring
        (g3, "E0101", day, "filed", None),
        (g3, "E0101", day + timedelta(days=10), "reported", None),
        # long ago: outside the 28 days
        (g3, "E0101", END - timedelta(days=60), "closed", END - timedelta(days=59)),
    ])
    found = recurring_problems(world["city_id"], end=END)
    assert [(r["grid_code"], r["category"], r["cases"], r["reappeared"], r["kinds"])
            for r in found] == [(g1, "E0101", 3, 0, ["repeated"]),
                                (g2, "E0102", 2, 1, ["reappeared"])]
    assert found[0]["case_codes"] == ["T00000001", "T00000002", "T00000003"]
    assert recurring_problems(world["city_id"], STREET_B, end=END) == []


def test_a_street_director_reads_the_forecast_and_hotspots_of_the_street_only(
        app_ctx, client, make_user, auth_headers):
    world = _build()
    _cases(world, _weeks_of_ordinary_life(world, weeks=30))
    director_a = make_user("duty_chief", "director_a", region_code=STREET_A)
    headers = auth_headers(director_a)

    answer = client.get("/api/v1/forecast?start=2026-11-23", headers=headers)
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["region"] == STREET_A and body["week"] == {"start": "2026-11-23",
                                                           "end": "2026-11-30"}
    assert sorted(g["grid_code"] for g in body["grids"]) == sorted(
        g for g in world["grids"] if g.startswith(STREET_A))
    for grid in body["grids"]:
        # one or two E0101 and half an E0102 a week: about two cases
        assert 1.0 < grid["expected"] < 3.0
        assert grid["low"] <= grid["expected"] <= grid["high"]
        assert {c["category"] for c in grid["categories"]} == {"E0101", "E0102"}
        assert len(grid["categories"][0]["by_day"]) == 7

    hotspots = client.get(f"/api/v1/hotspots?end={END.isoformat().replace('+', '%2B')}",
                          headers=headers)
    assert hotspots.status_code == 200
    assert hotspots.get_json()["region"] == STREET_A
    assert all(r["grid_code"].startswith(STREET_A) for r in hotspots.get_json()["recurring"])

    for path in (f"/api/v1/forecast?region={STREET_B}", f"/api/v1/hotspots?region={STREET_B}",
                 "/api/v1/forecast?region=110105"):
        refused = client.get(path, headers=headers)
        assert refused.status_code == 403, path
        assert refused.get_json()["error"]["code"] == "forbidden"
    worker = make_user("department", "w1")
    assert client.get("/api/v1/forecast", headers=auth_headers(worker)).status_code == 403
    assert client.get("/api/v1/forecast").status_code == 401


def test_the_forecast_follows_new_cases(app_ctx):
    from zoneinfo import ZoneInfo

    from gridmgr.prevention.forecast import next_week_forecast

    world = _build()
    _cases(world, _weeks_of_ordinary_life(world, weeks=30))
    spot = f"{STREET_B}001003"

    def expected() -> float:
        answer = next_week_forecast(world["city_id"], ZoneInfo("Asia/Shanghai"), STREET_B,
                                    END.date())
        return next(g["expected"] for g in answer["grids"] if g["grid_code"] == spot)

    before = expected()
    assert expected() == before  # asked again: the same answer (kept)
    monday = END - timedelta(days=7)
    _cases(world, [(spot, "E0101", monday + timedelta(days=d % 5, hours=9), "reported", None)
                   for d in range(10)], prefix="N")
    assert expected() > before + 0.5
