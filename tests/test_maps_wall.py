"""The wall page and its feeds, as a command centre uses them (through the test client)."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from maps_city import (
    STREET_A,
    STREET_B,
    build_city,
    dispatch,
    form_token,
    make_overdue,
    report,
    wall_sign_in,
)
from PIL import Image

import maps.feeds
from gridmgr.cases.workflow import StepInput, take_step
from gridmgr.extensions import db
from gridmgr.grids.models import City
from gridmgr.people.tokens import encode_token

PASSWORD = "pw-secret-123"
WHOLE_CITY = "116.29,39.89,116.35,39.93"


@pytest.fixture
def city(app_ctx):
    return build_city()


@pytest.fixture
def chief(city, make_user):
    return make_user("duty_chief", username="chief", city_id=city.city.id)


def sign_in(client, user, password=PASSWORD, next_url=None):
    return wall_sign_in(client, user.username, password, next_url)


def test_the_wall_asks_for_a_sign_in_and_keeps_the_token_in_a_sealed_cookie(client, chief):
    response = client.get("/wall")
    assert response.status_code == 302 and "/wall/login?next=/wall" in response.location
    form = client.get("/wall/login")
    assert form.status_code == 200 and "指挥中心" in form.text

    wrong = sign_in(client, chief, password="nope")
    assert wrong.status_code == 401 and "用户名或密码错误" in wrong.text
    assert client.get("/maps/token").status_code == 401

    right = sign_in(client, chief)
    assert right.status_code == 302 and right.location == "/wall"
    cookie = right.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "access" not in cookie  # sealed, not readable as JSON
    assert client.get("/wall").status_code == 200
    assert client.get("/maps/token").json["rooms"] == [f"city:{chief.city_id}"]

    client.post("/wall/logout", data={"csrf_token": form_token(client, "/wall")})
    assert client.get("/maps/token").status_code == 401
    assert client.get("/wall").status_code == 302


def test_an_expired_access_token_is_renewed_from_the_refresh_token(client, chief):
    sign_in(client, chief)
    expired = encode_token(chief, "access", now=datetime.now(UTC) - timedelta(hours=2),
                           lifetime=60)
    with client.session_transaction() as session:
        old_refresh = session["wall_tokens"]["refresh"]
        session["wall_tokens"] = {"access": expired, "refresh": old_refresh}
    assert client.get("/maps/feeds/stats").status_code == 200
    with client.session_transaction() as session:
        renewed = session["wall_tokens"]
    assert renewed["access"] != expired and renewed["refresh"] != old_refresh
    assert client.get("/maps/token").json["token"] == renewed["access"]


def test_a_platform_administrator_chooses_the_city_on_the_wall(client, city, make_user):
    other = City(slug="other-city", name="另一市", timezone="Asia/Shanghai")
    db.session.add(other)
    db.session.commit()
    admin = make_user("admin")
    sign_in(client, admin)
    assert client.get("/maps/token").json["rooms"] == [f"city:{city.city.id}"]
    assert client.get(f"/wall?city={other.id}").status_code == 200
    assert client.get("/maps/token").json["rooms"] == [f"city:{other.id}"]
    assert client.get("/maps/feeds/stats?city=x").json["error"]["code"] == "bad_city"


def test_after_sign_in_only_a_path_of_this_site_is_followed(client, chief):
    assert sign_in(client, chief, next_url="//evil.example/x").location == "/wall"
    assert sign_in(client, chief, next_url="https://evil.example/").location == "/wall"
    assert sign_in(client, chief, next_url="/wall?lang=en").location == "/wall?lang=en"


def test_a_citizen_or_department_has_no_wall(client, city, make_user):
    for role in ("citizen", "department"):
        user = make_user(role, region_code=STREET_A if role != "citizen" else None)
        with client.session_transaction() as session:
            session.clear()
        sign_in(client, user)
        response = client.get("/maps/feeds/stats")
        assert response.status_code == 403 and response.json["error"]["code"] == "forbidden"


def test_the_page_loads_only_this_sites_assets_and_carries_no_data(client, chief):
    sign_in(client, chief)
    page = client.get("/wall").text
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert assets and all(url.startswith("/") or url.startswith("?") for url in assets)
    assert not re.search(r"https?://", page.replace("http://www.w3.org", ""))
    for url in (a for a in assets if a.startswith("/maps/static/")):
        with client.get(url) as asset:
            assert asset.status_code == 200, url
    assert "vendor/leaflet/leaflet.js" in page and "wall.js" in page
    assert len(page.encode()) < 40_000


def test_chinese_by_default_english_by_a_switch(client, chief):
    sign_in(client, chief)
    assert "今日" in client.get("/wall").text
    english = client.get("/wall?lang=en").text
    assert "Today" in english and "今日" not in english
    assert "Today" in client.get("/wall").text  # remembered
    assert "今日" in client.get("/wall?lang=zh").text


def test_the_base_map_is_configurable_and_absent_by_default(app, client, chief, monkeypatch):
    sign_in(client, chief)
    page = client.get("/wall")
    assert "L.tileLayer(" not in page.text
    # The browser itself is told to fetch nothing from another host.
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "connect-src 'self'" in policy
    assert "img-src 'self' data: blob:;" in policy
    monkeypatch.setitem(app.config, "GRIDMGR_BASEMAP_URL", "/basemap/{z}/{x}/{y}.png")
    page = client.get("/wall").text
    assert "L.tileLayer(" in page and "/basemap/{z}/{x}/{y}.png" in page
    monkeypatch.setitem(app.config, "GRIDMGR_BASEMAP_URL",
                        "http://tiles.city.internal/{z}/{x}/{y}.png")
    policy = client.get("/wall").headers["Content-Security-Policy"]
    assert "img-src 'self' data: blob: http://tiles.city.internal;" in policy


def test_counters_overdue_list_and_tops_follow_the_cases(client, city, chief, make_user):
    inspector = make_user("inspector", region_code=STREET_A + "001001")
    first = report(inspector, *city.grid_centre(STREET_A, 1, 0, 0))
    second = report(inspector, *city.grid_centre(STREET_A, 1, 0, 0), category="E0101",
                    description="暴露垃圾")
    report(inspector, *city.grid_centre(STREET_B, 2, 3, 3))
    dispatch(first, chief, city.department)
    dispatch(second, chief, city.department)
    make_overdue(first)
    sign_in(client, chief)

    stats = client.get("/maps/feeds/stats").json
    assert stats["today"] == {"reported": 3, "filed": 2, "dispatched": 2, "handled": 0,
                              "closed": 0}
    assert stats["open"] == {"green": 1, "yellow": 0, "red": 1, "waiting": 1}
    assert [c["id"] for c in stats["overdue"]] == [first]
    assert stats["overdue"][0]["category"] == "上水井盖"
    assert stats["top_grids"][0] == {"code": STREET_A + "001013", "name": "网格13", "count": 2}
    assert sum(c["count"] for c in stats["top_categories"]) == 3
    assert sum(stats["per_hour"]) == 3 and len(stats["per_hour"]) == 24
    english = client.get("/maps/feeds/stats?lang=en").json
    assert english["overdue"][0]["category"] != "上水井盖"


def test_the_case_card_tells_the_whole_story(client, city, chief, make_user):
    inspector = make_user("inspector", region_code=STREET_A + "001001", display_name="王巡查")
    case_id = report(inspector, *city.grid_centre(STREET_A, 1, 2, 2))
    dispatch(case_id, chief, city.department)
    sign_in(client, chief)
    card = client.get(f"/maps/feeds/cases/{case_id}").json
    assert card["state"] == "dispatched" and card["clock"] == "green"
    assert card["kind"] == "component" and card["category"]["code"] == "C0101"
    assert card["grid_code"].startswith(STREET_A) and card["deadline"]
    assert card["department"] == city.department.name
    assert [h["to"] for h in card["history"]] == ["reported", "filed", "dispatched"]
    assert card["history"][0]["actor"] == "王巡查"
    assert client.get("/maps/feeds/cases/999999").status_code == 404


def test_the_card_shows_the_reporters_photo_from_the_photo_api(client, city, chief, make_user,
                                                               auth_headers):
    inspector = make_user("inspector", region_code=STREET_A + "001001")
    picture = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 80, 40)).save(picture, "JPEG")
    lon, lat = city.grid_centre(STREET_A, 1, 1, 1)
    sent = client.post("/api/v1/reports", headers=auth_headers(inspector), data={
        "lon": str(lon), "lat": str(lat), "category": "C0101", "description": "井盖破损",
        "photos": (io.BytesIO(picture.getvalue()), "manhole.jpg")},
        content_type="multipart/form-data")
    assert sent.status_code == 201, sent.json
    sign_in(client, chief)
    card = client.get(f"/maps/feeds/cases/{sent.json['case']['id']}").json
    assert [p["stage"] for p in card["photos"]] == ["before"]
    for url in (card["photos"][0]["url"], card["photos"][0]["thumb"]):
        with client.get(url) as photo:
            assert photo.status_code == 200 and photo.mimetype == "image/jpeg"


def test_a_dispatcher_gets_receivers_an_operator_does_not(client, city, chief, make_user):
    sign_in(client, chief)
    receivers = client.get("/maps/feeds/departments").json
    assert city.department.id in [d["id"] for d in receivers["departments"]]
    operator = make_user("operator", city_id=city.city.id)
    with client.session_transaction() as session:
        session.clear()
    sign_in(client, operator)
    assert client.get("/maps/feeds/departments").status_code == 403


def test_a_case_that_leaves_the_open_states_leaves_the_map(client, city, chief, make_user):
    inspector = make_user("inspector", region_code=STREET_A + "001001")
    case_id = report(inspector, *city.grid_centre(STREET_A, 1, 2, 0))
    sign_in(client, chief)
    marker = client.get(f"/maps/feeds/cases/{case_id}?marker=1").json["marker"]
    assert marker["clock"] == "waiting" and marker["kind"] == "component"
    take_step(case_id, "cancel", chief, StepInput(note="重复上报"))
    assert client.get(f"/maps/feeds/cases/{case_id}?marker=1").json == {"marker": None}
    assert client.get(f"/maps/feeds/cases?bbox={WHOLE_CITY}").json["cases"] == []
    assert client.get(f"/maps/feeds/cases/{case_id}").json["state"] == "cancelled"


def test_too_many_markers_become_clusters(client, city, chief, make_user, monkeypatch):
    inspector = make_user("inspector", region_code=STREET_A + "001001")
    for col in range(3):
        report(inspector, *city.grid_centre(STREET_A, 1, col, 0))
    sign_in(client, chief)
    monkeypatch.setattr(maps.feeds, "MAX_CASE_MARKERS", 2)
    data = client.get(f"/maps/feeds/cases?bbox={WHOLE_CITY}").json
    assert data["cases"] == [] and sum(c["count"] for c in data["clusters"]) == 3


@pytest.mark.parametrize(("query", "code"), [
    ("/maps/feeds/cases?bbox=1,2,3", "bad_bbox"),
    ("/maps/feeds/cases?bbox=10,0,5,1", "bad_bbox"),
    ("/maps/feeds/heat?bbox=a,b,c,d", "bad_bbox"),
    ("/maps/feeds/boundaries?level=grid&bbox=0,0,1,1", "bad_level"),
    ("/maps/feeds/boundaries?level=street&bbox=0,0,1,1&zoom=40", "bad_zoom"),
])
def test_bad_feed_queries_are_refused_with_a_code(client, chief, query, code):
    sign_in(client, chief)
    response = client.get(query)
    assert response.status_code in (400, 422) and response.json["error"]["code"] == code


def test_boundaries_come_only_for_the_asked_bbox(client, city, chief):
    sign_in(client, chief)
    fc = client.get("/maps/feeds/boundaries?level=community&bbox=116.30,39.90,116.31,39.905"
                    "&zoom=16").json
    assert {f["properties"]["code"] for f in fc["features"]} == {STREET_A + "001"}
