"""A provincial platform: several cities in one gridmgr, each added with one command
(``gridmgr cities add``), each with staff who see only their own city. Error sentences of the
API in the caller's language.

The two cities are the demo's 渝中区 (Chongqing, gridmgr/data/demo) and Beijing's sixteen
districts (tests/data/china), each with a few unit grids generated in one district.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from live_server import LiveClient, running_server
from sqlalchemy import func, select, text

from gridmgr.cases.intake import ReportInput, submit_report
from gridmgr.cases.workflow import StepInput, take_step
from gridmgr.categories.operations import load_default_catalogue
from gridmgr.cli import main
from gridmgr.extensions import db
from gridmgr.grids.models import City, Region
from gridmgr.people.models import Department, User
from gridmgr.people.tokens import encode_token

DEMO_DISTRICT = Path(__file__).resolve().parent.parent / "gridmgr" / "data" / "demo" / \
    "yuzhong_500103.geojson"
PASSWORD = "pw-secret-123"
CATEGORY = "E0101"
JIEFANGBEI = (106.5770, 29.5570)  # 渝中区
TIANANMEN = (116.3975, 39.9087)  # 东城区
WHOLE_CHINA = "73,18,135,54"
THIS_MONTH = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")


@dataclass
class Platform:
    chongqing: int
    beijing: int
    cq_case: int
    bj_case: int
    cq_chief: User
    bj_chief: User
    bj_worker: User
    bj_department: Department
    bj_department_user: User


def _ok(runner, *args: str) -> str:
    result = runner.invoke(main, args=list(args))
    assert result.exit_code == 0, result.output
    return result.output


def _city_id(slug: str) -> int:
    return db.session.scalar(select(City.id).where(City.slug == slug))


def _user(username: str) -> User:
    return db.session.scalar(select(User).where(User.username == username))


def _report(lon: float, lat: float, reporter: User) -> int:
    return submit_report(ReportInput(lon=lon, lat=lat, category=CATEGORY,
                                     description="井盖破损"), reporter).case_id


@pytest.fixture
def platform(app_ctx, runner, data_dir, make_user) -> Platform:
    """Both cities added through the documented commands, each with a city-wide duty chief
    (``gridmgr users add --city``), an inspector and a case; Beijing also has a department
    of its own with a member."""
    _ok(runner, "cities", "add", "chongqing", "--name", "重庆市", "--timezone",
        "Asia/Shanghai", "--boundaries", str(DEMO_DISTRICT), "--code-field", "code",
        "--name-field", "name", "--repair")
    _ok(runner, "cities", "add", "beijing", "--name", "北京市", "--timezone", "Asia/Shanghai",
        "--country", "CN", "--boundaries", str(data_dir / "china" / "beijing_districts.geojson"),
        "--code-field", "code", "--name-field", "name", "--repair")
    for slug, district in (("chongqing", "500103"), ("beijing", "110101")):
        _ok(runner, "grids", "generate", "--within", "district", "--city", slug,
            "--parent", district, "--cell-area", "4000000")
    load_default_catalogue()
    db.session.commit()
    for slug in ("chongqing", "beijing"):
        _ok(runner, "users", "add", f"{slug}-chief", "--role", "duty_chief", "--city", slug,
            "--password", PASSWORD)
    chongqing, beijing = _city_id("chongqing"), _city_id("beijing")
    cq_inspector = make_user("inspector", username="cq-inspector", region_code="500103")
    bj_worker = make_user("inspector", username="bj-inspector", region_code="110101")
    department = Department(city_id=beijing, name="北京环卫", name_en="Beijing sanitation")
    db.session.add(department)
    db.session.commit()
    bj_staff = make_user("department", username="bj-sanitation", department=department,
                         city_id=beijing)
    return Platform(chongqing=chongqing, beijing=beijing,
                    cq_case=_report(*JIEFANGBEI, cq_inspector),
                    bj_case=_report(*TIANANMEN, bj_worker),
                    cq_chief=_user("chongqing-chief"), bj_chief=_user("beijing-chief"),
                    bj_worker=bj_worker, bj_department=department,
                    bj_department_user=bj_staff)


def bearer(user: User) -> dict:
    return {"Authorization": f"Bearer {encode_token(user, 'access')}"}


def case_ids(client, user: User, **query) -> list[int]:
    answer = client.get("/api/v1/cases", query_string=query, headers=bearer(user))
    assert answer.status_code == 200, answer.get_json()
    return [item["id"] for item in answer.get_json()["items"]]


# --- adding a city --------------------------------------------------------------------------

def test_two_cities_are_added_with_one_command_each_and_listed(platform, runner):
    listed = _ok(runner, "cities", "list").splitlines()
    assert listed[0].startswith("beijing\t北京市\tAsia/Shanghai\tCN\t16 district")
    assert listed[1].startswith("chongqing\t重庆市\tAsia/Shanghai\tCN\t1 district")
    assert listed[0].endswith("\t3 staff") and listed[1].endswith("\t2 staff")
    assert db.session.scalar(select(func.count()).select_from(Region).where(
        Region.city_id == platform.beijing, Region.level == "district")) == 16


def test_a_city_with_its_own_country_and_holidays(app_ctx, runner, tmp_path):
    days = tmp_path / "days.json"
    days.write_text(json.dumps({"days": [{"day": "2027-03-01", "name": "Fête locale"},
                                         {"day": "2027-03-06", "kind": "workday"}]}))
    output = _ok(runner, "cities", "add", "lyon", "--name", "Lyon", "--timezone",
                 "Europe/Paris", "--country", "fr", "--calendar", str(days),
                 "--boundaries", str(DEMO_DISTRICT), "--code-field", "code", "--repair")
    assert "added city lyon (Lyon, Europe/Paris, FR) with 1 district regions" in output
    city = db.session.scalar(select(City).where(City.slug == "lyon"))
    assert (city.name, city.timezone, city.country) == ("Lyon", "Europe/Paris", "FR")
    listed = _ok(runner, "calendar", "list", "--city", "lyon")
    assert "Europe/Paris" in listed and "country FR" in listed
    assert "2027-03-01 Mon holiday Fête locale" in listed and "2027-03-06 Sat workday" in listed


@pytest.mark.parametrize(("args", "code"), [
    (["--timezone", "Mars/Olympus"], "invalid_calendar"),
    (["--country", "XX"], "unknown_country"),
    (["--code-field", "no_such_field"], "bad_field"),
    (["--calendar", "{calendar}"], "invalid_file"),
    (["--boundaries", "{broken}"], "invalid_boundaries"),
])
def test_a_city_refused_for_bad_input_leaves_nothing_behind(app_ctx, runner, data_dir,
                                                            tmp_path, args, code):
    broken = data_dir / "china" / "chongqing_districts.geojson"  # self-intersections
    calendar = tmp_path / "days.json"
    calendar.write_text('{"days": [{"day": "not a day"}]}')
    given = {"--timezone": "Asia/Shanghai", "--boundaries": str(DEMO_DISTRICT),
             "--code-field": "code"}
    for name, value in zip(args[::2], args[1::2], strict=True):
        given[name] = value.format(calendar=calendar, broken=broken)
    options = [part for pair in given.items() for part in pair]
    result = runner.invoke(main, args=["cities", "add", "chongqing", "--name", "重庆市",
                                       *options])
    assert result.exit_code == 1
    assert f"error [{code}]" in result.output
    for table in ("cities", "regions", "working_calendars", "calendar_days"):
        assert db.session.scalar(text(f"SELECT count(*) FROM {table}")) == 0, table


def test_adding_a_city_twice_is_refused_and_the_first_stays(app_ctx, runner):
    args = ["cities", "add", "chongqing", "--name", "重庆市", "--timezone", "Asia/Shanghai",
            "--boundaries", str(DEMO_DISTRICT), "--code-field", "code", "--repair"]
    _ok(runner, *args)
    again = runner.invoke(main, args=[*args[:4], "别的名字", *args[5:]])
    assert again.exit_code == 1 and "error [city_exists]" in again.output
    assert db.session.scalars(select(City.name)).all() == ["重庆市"]
    assert db.session.scalar(select(func.count()).select_from(Region)) == 1


def test_a_bad_slug_is_refused(app_ctx, runner):
    result = runner.invoke(main, args=["cities", "add", "Chong Qing", "--name", "重庆市",
                                       "--timezone", "Asia/Shanghai",
                                       "--boundaries", str(DEMO_DISTRICT)])
    assert result.exit_code == 1 and "error [bad_slug]" in result.output
    assert db.session.scalar(select(func.count()).select_from(City)) == 0


# --- each city's staff see only their own city ---------------------------------------------

def test_each_chief_lists_only_her_own_citys_cases(platform, client):
    assert case_ids(client, platform.cq_chief) == [platform.cq_case]
    assert case_ids(client, platform.bj_chief) == [platform.bj_case]


def test_a_chief_who_asks_for_the_other_city_is_refused(platform, client):
    answer = client.get("/api/v1/cases", query_string={"city": "beijing"},
                        headers=bearer(platform.cq_chief))
    assert answer.status_code == 403
    assert answer.get_json()["error"]["code"] == "forbidden"
    assert case_ids(client, platform.cq_chief, city="chongqing") == [platform.cq_case]


def test_a_chief_cannot_read_the_other_citys_case_by_id(platform, client):
    for user, case in ((platform.cq_chief, platform.bj_case),
                       (platform.bj_chief, platform.cq_case)):
        answer = client.get(f"/api/v1/cases/{case}", headers=bearer(user))
        assert answer.status_code == 403
        assert answer.get_json()["error"]["code"] == "forbidden"
        assert "井盖破损" not in answer.get_data(as_text=True)


def test_a_platform_wide_administrator_switches_between_cities(platform, client, make_user):
    admin = make_user("admin", username="province-admin")
    assert sorted(case_ids(client, admin)) == sorted([platform.cq_case, platform.bj_case])
    assert case_ids(client, admin, city="beijing") == [platform.bj_case]
    assert case_ids(client, admin, city="chongqing") == [platform.cq_case]
    unknown = client.get("/api/v1/cases", query_string={"city": "shanghai"},
                         headers=bearer(admin))
    assert unknown.status_code == 404
    assert unknown.get_json()["error"]["code"] == "unknown_city"
    stats = client.get("/api/v1/stats/regions", headers=bearer(admin),
                       query_string={"city": "beijing", "period": THIS_MONTH})
    assert stats.status_code == 200, stats.get_json()
    assert {row["key"][:2] for row in stats.get_json()["rows"]} == {"11"}


def test_each_chief_counts_only_her_own_city(platform, client):
    for user, prefix in ((platform.cq_chief, "50"), (platform.bj_chief, "11")):
        answer = client.get("/api/v1/stats/regions", query_string={"period": THIS_MONTH},
                            headers=bearer(user))
        assert answer.status_code == 200, answer.get_json()
        keys = {row["key"] for row in answer.get_json()["rows"]}
        assert keys and {key[:2] for key in keys} == {prefix}
    other = client.get("/api/v1/stats/regions", query_string={"city": "chongqing",
                                                              "period": THIS_MONTH},
                       headers=bearer(platform.bj_chief))
    assert other.status_code == 403
    assert other.get_json()["error"]["code"] == "forbidden"


def test_each_chiefs_wall_shows_only_her_own_city(platform, client, make_user):
    for user, own, other in ((platform.cq_chief, platform.cq_case, platform.bj_case),
                             (platform.bj_chief, platform.bj_case, platform.cq_case)):
        feed = client.get("/maps/feeds/cases", query_string={"bbox": WHOLE_CHINA},
                          headers=bearer(user))
        assert feed.status_code == 200
        shown = {c["id"] for c in feed.get_json()["cases"]}
        assert shown == {own}
        card = client.get(f"/maps/feeds/cases/{other}", headers=bearer(user))
        assert card.status_code == 404
        # A chief of a city cannot switch the wall to another one.
        switched = client.get("/maps/feeds/cases", headers=bearer(user), query_string={
            "bbox": WHOLE_CHINA, "city": platform.beijing if own == platform.cq_case
            else platform.chongqing})
        assert {c["id"] for c in switched.get_json()["cases"]} == {own}
    admin = make_user("admin", username="province-admin")
    for city, case in ((platform.beijing, platform.bj_case),
                       (platform.chongqing, platform.cq_case)):
        feed = client.get("/maps/feeds/cases", headers=bearer(admin),
                          query_string={"bbox": WHOLE_CHINA, "city": city})
        assert {c["id"] for c in feed.get_json()["cases"]} == {case}


def test_a_chief_cannot_join_the_other_citys_live_rooms(platform, app, tmp_path):
    with running_server(app, tmp_path / "server") as server:
        client = LiveClient(server.url, encode_token(platform.cq_chief, "access"))
        try:
            assert client.call("rooms")["rooms"] == sorted(
                [f"worker:{platform.cq_chief.id}", f"city:{platform.chongqing}"])
            for room in (f"city:{platform.beijing}", "region:110101", "region:110101000000001",
                         f"department:{platform.bj_department.id}",
                         f"worker:{platform.bj_worker.id}"):
                answer = client.call("join", {"room": room})
                assert answer["ok"] is False, room
                assert answer["error"]["code"] == "forbidden"
            assert client.call("join", {"room": "region:500103"})["ok"] is True
            assert client.call("rooms")["rooms"] == sorted(
                [f"worker:{platform.cq_chief.id}", f"city:{platform.chongqing}",
                 "region:500103"])
        finally:
            client.close()


# --- dispatch stays inside the case's city --------------------------------------------------

def _filed(platform: Platform) -> int:
    take_step(platform.cq_case, "file", platform.cq_chief, StepInput())
    return platform.cq_case


def _trail(case_id: int) -> tuple:
    return (db.session.scalar(text("SELECT state FROM cases WHERE id = :id"), {"id": case_id}),
            db.session.scalar(text("SELECT count(*) FROM case_history WHERE case_id = :id"),
                              {"id": case_id}),
            db.session.scalar(text("SELECT count(*) FROM live_events")))


@pytest.mark.parametrize(("receiver", "code"), [
    ({"worker": "bj-inspector"}, "worker_of_another_city"),
    ({"worker": "bj-sanitation"}, "worker_of_another_city"),
    ({"department": "北京环卫"}, "department_of_another_city"),
])
def test_a_chief_cannot_dispatch_to_a_worker_or_department_of_another_city(
        platform, client, receiver, code):
    case_id = _filed(platform)
    before = _trail(case_id)
    answer = client.post(f"/api/v1/cases/{case_id}/dispatch", json=receiver,
                         headers=bearer(platform.cq_chief))
    assert answer.status_code == 422
    assert answer.get_json()["error"]["code"] == code
    db.session.expire_all()
    assert _trail(case_id) == before
    assert before[0] == "filed"


def test_a_chief_dispatches_to_her_own_citys_worker(platform, client, make_user):
    case_id = _filed(platform)
    make_user("inspector", username="cq-worker", region_code="500103")
    answer = client.post(f"/api/v1/cases/{case_id}/dispatch", json={"worker": "cq-worker"},
                         headers=bearer(platform.cq_chief))
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["state"] == "dispatched"


# --- error sentences in the caller's language -----------------------------------------------

def _refusal(answer, status: int) -> tuple[str, str]:
    assert answer.status_code == status, answer.get_json()
    error = answer.get_json()["error"]
    return error["code"], error["message"]


def test_a_refusal_speaks_chinese_to_a_chinese_phone_and_english_otherwise(
        platform, client):
    url = f"/api/v1/cases/{platform.bj_case}"
    sentences = {}
    for language in ("zh-CN,zh;q=0.9,en;q=0.8", "en", None):
        headers = {**bearer(platform.cq_chief),
                   **({"Accept-Language": language} if language else {})}
        sentences[language] = _refusal(client.get(url, headers=headers), 403)
    assert sentences["zh-CN,zh;q=0.9,en;q=0.8"] == ("forbidden", "值班长无权在该城市查看此案件。")
    assert sentences["en"] == ("forbidden", "A duty chief may not see this case in that city.")
    assert sentences[None] == sentences["en"]


@pytest.mark.parametrize(("request_", "status", "code", "zh", "en"), [
    (lambda c, h: c.get("/api/v1/cases/987654", headers=h), 404, "case_not_found",
     "没有编号为 987654 的案件。", "No case has the id 987654."),
    (lambda c, h: c.get("/api/v1/cases", query_string={"limit": 0}, headers=h), 422,
     "invalid_input", "请求体或查询参数无效。", "The request body or query is not valid."),
    (lambda c, h: c.get("/api/v1/cases", headers={k: v for k, v in h.items()
                                                  if k != "Authorization"}),
     401, "token_missing", "此请求需要 Bearer 令牌。", "This request needs a bearer token."),
    (lambda c, h: c.get("/api/v1/cases/nearby", headers=h, query_string={
        "lon": JIEFANGBEI[0], "lat": JIEFANGBEI[1], "category": "Z9999"}), 422,
     "unknown_category", "没有代码为 'Z9999' 的启用类别。",
     "No active category has the code 'Z9999'."),
    (lambda c, h: c.post("/api/v1/reports", headers=h, data="{not json",
                         content_type="application/json"), 400, "malformed_json",
     "请求体不是有效的 JSON。", "The body is not valid JSON."),
    (lambda c, h: c.post("/api/v1/reports", headers=h, json={
        "lon": 121.47, "lat": 31.23, "category": CATEGORY, "description": "上海"}), 422,
     "outside_city", "点 (121.470000, 31.230000) 不在本市任何区域内。",
     "The point (121.470000, 31.230000) is outside every region of the city."),
])
def test_common_refusals_in_chinese_and_english_with_the_same_code(
        platform, client, request_, status, code, zh, en):
    headers = bearer(platform.cq_chief)
    reports = db.session.scalar(text("SELECT count(*) FROM reports"))
    assert _refusal(request_(client, {**headers, "Accept-Language": "zh-CN"}), status) == (
        code, zh)
    assert _refusal(request_(client, {**headers, "Accept-Language": "en-GB"}), status) == (
        code, en)
    assert db.session.scalar(text("SELECT count(*) FROM reports")) == reports
