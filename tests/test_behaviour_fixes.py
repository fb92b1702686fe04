"""Stories of users at the edges of the loop, the intake and the public outputs."""

from __future__ import annotations

import io
from datetime import datetime

import pytest
from cityfixtures import city_fixture  # noqa: F401
from sqlalchemy import text

from gridmgr.extensions import db


def step(client, headers, case_id, action, **body):
    return client.post(f"/api/v1/cases/{case_id}/{action}", headers=headers, json=body)


def report(client, headers, lon, lat, category="C0101", client_id="phone-1", **body):
    answer = client.post("/api/v1/reports", headers=headers, json={
        "lon": lon, "lat": lat, "category": category, "description": "井盖破损",
        "channel": "app", "client_id": client_id, **body})
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["case"]["id"]


def history_actions(case_id: int) -> list[str]:
    return db.session.execute(text(
        "SELECT action FROM case_history WHERE case_id = :id ORDER BY id"), {"id": case_id}
    ).scalars().all()


# -- rating ------------------------------------------------------------------------------------

def test_a_citizen_who_rates_a_closed_case_twice_is_told_it_is_already_rated(
        client, city, make_user, auth_headers):
    citizen = make_user("citizen")
    case_id = report(client, auth_headers(citizen), *city.centre(0))
    db.session.execute(text("UPDATE cases SET state = 'closed', closed_at = now() "
                            "WHERE id = :id"), {"id": case_id})
    db.session.commit()

    rated = step(client, auth_headers(citizen), case_id, "rate", rating=5, note="很快")
    assert rated.status_code == 200, rated.get_json()
    again = step(client, auth_headers(citizen), case_id, "rate", rating=1, note="改主意了")

    assert again.status_code == 409
    error = again.get_json()["error"]
    assert error["code"] == "already_rated"
    assert "already rated" in error["message"]
    row = db.session.execute(text("SELECT rating, rating_note FROM cases WHERE id = :id"),
                             {"id": case_id}).one()
    assert (row.rating, row.rating_note) == (5, "很快")
    assert history_actions(case_id).count("rate") == 1


# -- malformed Unicode in JSON bodies ----------------------------------------------------------

# Each is a JSON string literal, as bytes, that no database text can hold.
BROKEN_TEXTS = {
    "invalid UTF-8 bytes": (b'"\xff\xfe \xe4\xba"', 400, "malformed_json"),
    "an overlong encoding of /": (b'"a\xc0\xafb"', 400, "malformed_json"),
    "a surrogate encoded in UTF-8": (b'"\xed\xa0\x80"', 400, "malformed_json"),
    "a lone high surrogate escape": (b'"broken \\ud800 lamp"', 422, "invalid_text"),
    "a lone low surrogate escape": (b'"broken \\udc00 lamp"', 422, "invalid_text"),
    "a pair split and reversed": (b'"\\ude00\\ud83d"', 422, "invalid_text"),
    "a high surrogate at the end": (b'"lamp \\ud83d"', 422, "invalid_text"),
}


def json_with(fields: dict, target: str, literal: bytes) -> bytes:
    """``fields`` as a JSON object whose ``target`` value is the raw string ``literal``."""
    import json

    parts = [json.dumps(key).encode() + b": "
             + (literal if key == target else json.dumps(value).encode())
             for key, value in fields.items()]
    return b"{" + b", ".join(parts) + b"}"


def table_counts() -> dict:
    return {table: db.session.scalar(text(f"SELECT count(*) FROM {table}"))
            for table in ("cases", "reports", "case_history", "users", "departments")}


def _send_report(client, people, literal):
    lon, lat = people.city.centre(0)
    return client.post("/api/v1/reports", headers=people.headers(people.citizen),
                       content_type="application/json", data=json_with(
                           {"lon": lon, "lat": lat, "category": "C0101", "description": "x",
                            "channel": "app"}, "description", literal))


def _send_step(client, people, literal):
    lon, lat = people.city.centre(0)
    return client.post(f"/api/v1/cases/{people.case_id}/verify",
                       headers=people.headers(people.inspector),
                       content_type="application/json", data=json_with(
                           {"lon": lon, "lat": lat, "note": "x"}, "note", literal))


def _send_profile(client, people, literal):
    return client.patch("/api/v1/me", headers=people.headers(people.citizen),
                        content_type="application/json",
                        data=json_with({"display_name": "x"}, "display_name", literal))


def _send_department(client, people, literal):
    return client.post("/api/v1/admin/departments", headers=people.headers(people.admin),
                       content_type="application/json", data=json_with(
                           {"name": "x", "name_en": "Roads"}, "name", literal))


def _send_login(client, people, literal):
    return client.post("/api/v1/auth/token", content_type="application/json",
                       data=json_with({"username": "x", "password": "pw-secret-123"},
                                      "username", literal))


def _send_open311(client, people, literal):
    lon, lat = people.city.centre(0)
    return client.post(f"/open311/v2/requests.json?api_key={people.api_key}",
                       content_type="application/json", data=json_with(
                           {"service_code": "C0101", "lat": lat, "long": lon,
                            "description": "x"}, "description", literal))


@pytest.fixture
def people(client, city, make_user, auth_headers):
    """A citizen with one report, the grid's inspector, an administrator, an Open311 key."""
    from types import SimpleNamespace

    from gridmgr.open311.keys import create_api_key

    citizen = make_user("citizen")
    return SimpleNamespace(
        city=city, citizen=citizen, inspector=make_user("inspector", region_code=city.grids[0]),
        admin=make_user("admin"), headers=auth_headers, api_key=create_api_key("city-app"),
        case_id=report(client, auth_headers(citizen), *city.centre(0)))


@pytest.mark.parametrize("send", [_send_report, _send_step, _send_profile, _send_department,
                                  _send_login, _send_open311],
                         ids=["report", "case step", "own profile", "admin department",
                              "sign in", "open311"])
def test_a_client_sending_malformed_unicode_in_json_is_refused_and_nothing_is_written(
        client, people, send):
    profiles = db.session.execute(text(
        "SELECT id, display_name, token_generation FROM users ORDER BY id")).all()
    before = table_counts()
    for kind, (literal, status, code) in BROKEN_TEXTS.items():
        answer = send(client, people, literal)
        if send is _send_open311:  # GeoReport knows 400 alone, in its own error body
            assert answer.status_code == 400, (kind, answer.get_data(as_text=True))
        else:
            assert answer.status_code == status, (kind, answer.get_data(as_text=True))
            assert answer.get_json()["error"]["code"] == code, kind
        assert table_counts() == before, kind
    assert db.session.execute(text(
        "SELECT id, display_name, token_generation FROM users ORDER BY id")).all() == profiles
    assert db.session.scalar(text("SELECT state FROM cases WHERE id = :id"),
                             {"id": people.case_id}) == "reported"


def test_a_lone_surrogate_is_named_by_its_field_on_any_endpoint(client, people):
    answer = _send_profile(client, people, b'"\\ud800"')
    assert answer.status_code == 422
    assert answer.get_json()["error"]["details"]["field"] == "display_name"


def test_a_well_formed_surrogate_pair_is_an_ordinary_character(client, people):
    answer = client.patch("/api/v1/me", headers=people.headers(people.citizen),
                          content_type="application/json",
                          data=b'{"display_name": "\\ud83d\\ude00 \\\\ud800"}')
    assert answer.status_code == 200, answer.get_json()
    assert db.session.scalar(text("SELECT display_name FROM users WHERE id = :id"),
                             {"id": people.citizen.id}) == "\U0001F600 \\ud800"


# -- a city of many grids ----------------------------------------------------------------------

MANY_GRIDS = 1_200


def add_many_grids(city, count: int = MANY_GRIDS) -> list[str]:
    """``count`` small grids in the test city, 600 to a community (a second community under
    the street when needed); their codes in order."""
    from cityfixtures import COMMUNITY, STREET

    second = STREET + "002"
    db.session.execute(text("""
        INSERT INTO regions (city_id, level, code, name, parent_id, geom, area_m2)
        SELECT r.city_id, 'community', :second, '第二社区', r.parent_id, r.geom, r.area_m2
        FROM regions r WHERE r.code = :community"""),
        {"second": second, "community": COMMUNITY})
    db.session.execute(text("""
        INSERT INTO regions (city_id, level, code, name, parent_id, geom, area_m2)
        SELECT p.city_id, 'grid', p.code || lpad((n % 600 + 100)::text, 3, '0'),
               '网格 ' || n, p.id,
               ST_Multi(ST_MakeEnvelope(116.5 + (n % 40) * 0.0005, 39.95 + (n / 40) * 0.0005,
                                        116.5005 + (n % 40) * 0.0005,
                                        39.9505 + (n / 40) * 0.0005, 4326)),
               1800.0
        FROM generate_series(0, :count - 1) AS n
        JOIN regions p ON p.code = CASE WHEN n < 600 THEN :community ELSE :second END"""),
        {"count": count, "community": COMMUNITY, "second": second})
    db.session.commit()
    return sorted(db.session.execute(text(
        "SELECT code FROM regions WHERE level = 'grid' AND code NOT IN :old"
    ).bindparams(__import__("sqlalchemy").bindparam("old", expanding=True)),
        {"old": city.grids}).scalars())


def test_the_open_data_boundaries_of_a_city_of_many_grids_are_one_whole_document(app, city):
    """Through a real HTTP server: the test client keeps the test's own session open after
    the view returns, which a server does not."""
    import json
    import threading
    import urllib.request

    from werkzeug.serving import make_server

    codes = add_many_grids(city)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def document(query: str) -> dict:
        url = f"http://127.0.0.1:{server.server_port}/open-data/regions.geojson?{query}"
        with urllib.request.urlopen(url, timeout=30) as answer:
            assert answer.status == 200
            return json.loads(answer.read())  # the whole body, to its last byte

    try:
        features = document("level=grid&city=test-city")["features"]
        assert sorted(f["id"] for f in features) == sorted(codes + city.grids)
        assert len(features) == MANY_GRIDS + len(city.grids)
        assert all(f["geometry"]["type"] == "MultiPolygon" for f in features)
        for level, count in (("district", 1), ("street", 1), ("community", 2)):
            assert len(document(f"level={level}")["features"]) == count
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def test_a_phone_reads_every_grid_of_a_city_page_by_page(client, city):
    codes = add_many_grids(city)
    pages, seen, cursor = 0, [], None
    while True:
        query = "level=grid&city=test-city&limit=500" + (f"&cursor={cursor}" if cursor else "")
        answer = client.get(f"/api/v1/regions?{query}")
        assert answer.status_code == 200, answer.get_json()
        page = answer.get_json()
        pages += 1
        seen += [feature["id"] for feature in page["features"]]
        assert page["truncated"] is (page["next"] is not None)
        cursor = page["next"]
        if cursor is None:
            break
        assert pages < 10
    assert pages == 3
    assert len(seen) == len(set(seen)) == MANY_GRIDS + len(city.grids)
    assert seen == sorted(codes + city.grids)


def test_a_cursor_the_api_never_gave_out_is_refused(client, city):
    for cursor in ("not-a-cursor", "MTEwMTA1MDAxMDAxMTAxOmFiYw", "%00"):
        answer = client.get(f"/api/v1/regions?level=grid&cursor={cursor}")
        assert answer.status_code == 422, cursor
        assert answer.get_json()["error"]["code"] in ("bad_cursor", "invalid_input"), cursor


def test_the_api_document_tells_how_to_page_through_regions(client):
    document = client.get("/api/v1/openapi.json").get_json()
    operation = document["paths"]["/api/v1/regions"]["get"]
    assert "cursor" in [parameter["name"] for parameter in operation["parameters"]]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    name = schema["$ref"].rsplit("/", 1)[-1]
    assert "next" in document["components"]["schemas"][name]["properties"]


# -- an inspector's own report outside their grids ---------------------------------------------

def test_an_inspector_who_reports_just_outside_their_grid_still_reads_their_own_report(
        client, city, make_user, auth_headers):
    reporter = make_user("inspector", region_code=city.grids[0])
    neighbour = make_user("inspector", region_code=city.grids[0])
    lon, lat = city.centre(1)  # the next grid east, outside both inspectors' scope
    answer = client.post("/api/v1/reports", headers=auth_headers(reporter), json={
        "lon": lon, "lat": lat, "category": "E0101", "channel": "patrol",
        "description": "路边堆放垃圾 店主电话 13800000000", "client_id": "patrol-1"})
    assert answer.status_code == 201, answer.get_json()
    case_id = answer.get_json()["case"]["id"]

    own = client.get(f"/api/v1/cases/{case_id}", headers=auth_headers(reporter))
    assert own.status_code == 200, own.get_json()
    body = own.get_json()
    assert body["id"] == case_id and body["state"] == "reported"
    assert [r["description"] for r in body["reports"]] == ["路边堆放垃圾 店主电话 13800000000"]
    # The reporter's view, not the staff's: the case as the public sees it besides.
    assert "13800000000" not in body["description"]
    assert [(step["action"], step["lon"]) for step in body["history"]] == [("report", None)]

    other = client.get(f"/api/v1/cases/{case_id}", headers=auth_headers(neighbour))
    assert other.status_code == 403
    assert other.get_json()["error"]["code"] == "forbidden"


# -- importing a national file with a county of no polygon -------------------------------------

def _county_file(tmp_path) -> str:
    import json

    def square(x: float) -> dict:
        return {"type": "Polygon", "coordinates": [[[x, 29.55], [x + 0.01, 29.55],
                                                   [x + 0.01, 29.56], [x, 29.56], [x, 29.55]]]}
    features = [
        {"type": "Feature", "properties": {"name": "渝中区", "code": "500103"},
         "geometry": square(106.50)},
        {"type": "Feature", "properties": {"name": "空县", "code": "500104"},
         "geometry": {"type": "Polygon", "coordinates": []}},
        {"type": "Feature", "properties": {"name": "无形县", "code": "500105"},
         "geometry": None},
        {"type": "Feature", "properties": {"name": "江北区", "code": "500106"},
         "geometry": square(106.52)},
    ]
    path = tmp_path / "counties.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features},
                               ensure_ascii=False))
    return str(path)


def test_a_strict_import_of_counties_refuses_one_without_a_polygon(app_ctx, tmp_path):
    from gridmgr.grids.importing import InvalidBoundaries, import_regions

    with pytest.raises(InvalidBoundaries) as refused:
        import_regions(_county_file(tmp_path), "district", code_field="code", city="china")
    problems = refused.value.details["problems"]
    assert [(p["problem"], p["name"]) for p in problems] == [
        ("empty_geometry", "空县"), ("empty_geometry", "无形县")]
    assert db.session.scalar(text("SELECT count(*) FROM regions")) == 0


def test_a_repaired_import_leaves_out_a_county_without_a_polygon_and_says_so(app_ctx,
                                                                              tmp_path):
    from gridmgr.grids.importing import import_regions

    result = import_regions(_county_file(tmp_path), "district", code_field="code",
                            city="china", repair=True)
    left_out = [c for c in result.changes if c["change"] == "left_out"]
    assert [(c["name"], c["row"]) for c in left_out] == [("空县", 2), ("无形县", 3)]
    assert all("no polygon" in c["message"] for c in left_out)
    assert db.session.execute(text("SELECT code, name FROM regions ORDER BY code")).all() == [
        ("500103", "渝中区"), ("500106", "江北区")]


# -- the intake limit behind one gateway address -----------------------------------------------

@pytest.fixture
def intake_limit_of_three(app, monkeypatch):
    """The intake limit on, at 3 reports a day, counted in a memory of its own (the test app
    was built with limits off, hence with no storage)."""
    from limits.storage import MemoryStorage

    from gridmgr.extensions import limiter

    monkeypatch.setitem(app.config, "RATELIMIT_ENABLED", True)
    monkeypatch.setitem(app.config, "GRIDMGR_INTAKE_RATE_LIMIT", "3 per day")
    monkeypatch.setattr(limiter, "_storage", MemoryStorage())


def test_inspectors_behind_one_gateway_address_each_have_their_own_intake_limit(
        client, city, make_user, auth_headers, intake_limit_of_three):
    inspectors = [make_user("inspector", region_code=city.grids[0]) for _ in range(4)]
    lon, lat = city.centre(0)

    def send(headers, client_id):
        return client.post("/api/v1/reports", headers=headers, json={
            "lon": lon, "lat": lat, "category": "E0101", "channel": "patrol",
            "client_id": client_id}, environ_base={"REMOTE_ADDR": "203.0.113.7"})

    for n in range(3):  # twelve reports from one address, three from each inspector
        for i, inspector in enumerate(inspectors):
            answer = send(auth_headers(inspector), f"insp-{i}-{n}")
            assert answer.status_code == 201, (i, n, answer.get_json())
    cases = db.session.scalar(text("SELECT count(*) FROM cases"))

    fourth = send(auth_headers(inspectors[0]), "insp-0-3")
    assert fourth.status_code == 429
    assert fourth.get_json()["error"]["code"] == "too_many_requests"
    assert "this user" in fourth.get_json()["error"]["message"]
    assert int(fourth.headers["Retry-After"]) >= 1
    assert db.session.scalar(text("SELECT count(*) FROM cases")) == cases == 12


def test_anonymous_reports_stay_limited_per_address(client, city, intake_limit_of_three):
    lon, lat = city.centre(0)

    def send(address, n):
        return client.post("/api/v1/reports", json={
            "lon": lon, "lat": lat, "category": "C0101", "channel": "app",
            "description": f"井盖 {address} {n}"}, environ_base={"REMOTE_ADDR": address})

    assert [send("203.0.113.7", n).status_code for n in range(3)] == [201] * 3
    refused = send("203.0.113.7", 3)
    assert refused.status_code == 429
    assert "this address" in refused.get_json()["error"]["message"]
    assert send("198.51.100.9", 0).status_code == 201  # another address, its own limit
    assert db.session.scalar(text("SELECT count(*) FROM cases")) == 4


# -- a rework after an approved extension ------------------------------------------------------

def test_a_rework_starts_a_fresh_handling_limit_and_the_approved_extension_no_longer_applies(
        client, city, make_user, auth_headers):
    from cityfixtures import jpeg_bytes, multipart

    from gridmgr.calendar.deadlines import add_limit, calendar_for_city

    inspector = make_user("inspector", region_code=city.grids[0])
    chief = make_user("duty_chief")
    staff = make_user("department", department="环卫中心")
    lon, lat = city.centre(0)
    answer = client.post("/api/v1/reports", headers=auth_headers(inspector), json={
        "lon": lon, "lat": lat, "category": "E0101", "channel": "patrol", "client_id": "p-1"})
    case_id = answer.get_json()["case"]["id"]
    for action, body in (("file", {}), ("dispatch", {"department": "环卫中心"})):
        assert step(client, auth_headers(chief), case_id, action, **body).status_code == 200
    assert step(client, auth_headers(staff), case_id, "accept").status_code == 200
    extended = step(client, auth_headers(chief), case_id, "extend", amount=3,
                    unit="working_days", note="需要更换垃圾桶")
    assert extended.status_code == 200, extended.get_json()
    handled = client.post(f"/api/v1/cases/{case_id}/handle", headers=auth_headers(staff),
                          **multipart({"lon": str(lon), "lat": str(lat),
                                       "photos": (io.BytesIO(jpeg_bytes()), "after.jpg")}))
    assert handled.status_code == 200, handled.get_json()

    reworked = step(client, auth_headers(chief), case_id, "rework", note="垃圾桶仍未更换")
    assert reworked.status_code == 200, reworked.get_json()

    row = db.session.execute(text(
        "SELECT deadline, dispatched_at, extension_count, rework_count FROM cases "
        "WHERE id = :id"), {"id": case_id}).one()
    # The category's four working hours, counted from the rework; not the extended deadline.
    expected = add_limit(row.dispatched_at, 4, "working_hours", calendar_for_city(city.city_id))
    assert row.deadline == expected
    assert row.deadline.isoformat() == reworked.get_json()["deadline"]
    assert row.deadline < datetime.fromisoformat(extended.get_json()["deadline"])
    assert (row.extension_count, row.rework_count) == (1, 1)  # the history keeps both

    again = step(client, auth_headers(chief), case_id, "extend", amount=1,
                 unit="working_days", note="再延一天")
    assert again.status_code == 200, again.get_json()
    assert datetime.fromisoformat(again.get_json()["deadline"]) > row.deadline
