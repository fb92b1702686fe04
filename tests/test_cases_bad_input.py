"""Bad input is refused with a 4xx, a code and a sentence, and the database does not change."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from cityfixtures import OUTSIDE, city_fixture, jpeg_bytes, multipart  # noqa: F401
from sqlalchemy import text

from gridmgr.cases import intake
from gridmgr.extensions import db

TABLES = ("cases", "reports", "case_history", "photos", "live_events")


def counts() -> dict:
    db.session.rollback()
    return {t: db.session.scalar(text(f"SELECT count(*) FROM {t}")) for t in TABLES}


@pytest.fixture
def citizen_headers(city, make_user, auth_headers):
    return auth_headers(make_user("citizen"))


def refused(response, status: int, code: str | None = None):
    assert response.status_code == status, response.get_data(as_text=True)[:400]
    error = response.get_json()["error"]
    assert error["message"]
    if code:
        assert error["code"] == code
    return error


def test_a_point_outside_the_city_is_refused(client, city, citizen_headers):
    before = counts()
    answer = client.post("/api/v1/reports", headers=citizen_headers, json={
        "lon": OUTSIDE[0], "lat": OUTSIDE[1], "category": "C0101", "client_id": "o-1"})
    refused(answer, 422, "outside_city")
    assert counts() == before


@pytest.mark.parametrize("body, status, code", [
    ({"category": "C0101"}, 422, "location_required"),
    ({"lon": 116.401, "lat": 39.901, "category": "X9999"}, 422, "unknown_category"),
    ({"lon": 116.401, "lat": 39.901}, 422, "category_required"),
    ({"lon": "east", "lat": 39.901, "category": "C0101"}, 422, "invalid_input"),
    ({"lon": 500, "lat": 39.901, "category": "C0101"}, 422, "invalid_input"),
    ({"lon": 116.401, "lat": 39.901, "category": "C0101", "channel": "fax"}, 422,
     "invalid_input"),
    ({"lon": 116.401, "lat": 39.901, "category": "C0101", "coord_sys": "utm"}, 422,
     "invalid_input"),
    ({"lon": 116.401, "lat": 39.901, "category": "C0101", "duplicate_of": 999999}, 404,
     "case_not_found"),
    ({"lon": 116.401, "lat": 39.901, "category": "C0101", "description": "长" * 5000}, 422,
     "invalid_input"),
    ({"lon": 116.401, "lat": 39.901, "category": "C0101", "client_id": "x" * 65}, 422,
     "invalid_input"),
    ({"lon": 116.401, "lat": 39.901, "category": "C0101'; DROP TABLE cases; --"}, 422,
     "unknown_category"),
    ({"lon": 116.401, "lat": 39.901, "category": "' OR 1=1 --"}, 422, "unknown_category"),
    ({"lon": 116.401, "lat": 39.901, "category": "C0101", "contact_email": "not-an-email"},
     422, "invalid_input"),
])
def test_bad_report_fields_are_refused(client, city, citizen_headers, body, status, code):
    before = counts()
    refused(client.post("/api/v1/reports", headers=citizen_headers, json=body), status, code)
    assert counts() == before


@pytest.mark.parametrize("raw", ['{"lon": 116.4, "lat":', "[1, 2, 3]", "null", "\xff\xfe"])
def test_malformed_json_is_refused(client, city, citizen_headers, raw):
    before = counts()
    answer = client.post("/api/v1/reports", headers=citizen_headers, data=raw,
                         content_type="application/json")
    assert answer.status_code in (400, 422)
    assert answer.get_json()["error"]["code"] in ("malformed_json", "invalid_input",
                                                  "location_required", "category_required")
    assert counts() == before


def test_sql_looking_and_non_ascii_text_is_stored_as_text(client, city, citizen_headers):
    lon, lat = city.centre(0)
    words = "Robert'); DROP TABLE cases;-- 井盖 🚧 ñ"
    answer = client.post("/api/v1/reports", headers=citizen_headers, json={
        "lon": lon, "lat": lat, "category": "C0101", "description": words,
        "client_id": "sql-1", "contact_name": words[:200]})
    assert answer.status_code == 201
    assert db.session.scalar(text("SELECT description FROM cases")) == words


def test_a_twenty_megabyte_photo_is_refused(client, city, citizen_headers):
    lon, lat = city.centre(0)
    before = counts()
    big = jpeg_bytes() + b"\0" * (20 * 1024 * 1024)
    answer = client.post("/api/v1/reports", headers=citizen_headers, **multipart({
        "lon": str(lon), "lat": str(lat), "category": "C0101", "client_id": "big-1",
        "photos": (io.BytesIO(big), "big.jpg")}))
    refused(answer, 413, "photo_too_large")
    assert counts() == before


@pytest.mark.parametrize("content", [b"just some text, not a picture\n", b"\xff\xd8\xff\xe0garbage",
                                     b""])
def test_a_file_named_jpg_that_is_not_a_picture_is_refused(client, city, citizen_headers,
                                                          content):
    lon, lat = city.centre(0)
    before = counts()
    answer = client.post("/api/v1/reports", headers=citizen_headers, data={
        "lon": str(lon), "lat": str(lat), "category": "C0101", "client_id": "txt-1",
        "photos": (io.BytesIO(content), "photo.jpg")}, content_type="multipart/form-data")
    refused(answer, 415, "bad_photo")
    assert counts() == before


def test_a_replayed_client_id_never_makes_a_second_case(client, city, citizen_headers):
    lon, lat = city.centre(1)
    body = {"lon": lon, "lat": lat, "category": "C0101", "client_id": "replay-1"}
    first = client.post("/api/v1/reports", headers=citizen_headers, json=body)
    assert first.status_code == 201
    before = counts()
    for _ in range(3):
        again = client.post("/api/v1/reports", headers=citizen_headers, json=body)
        assert again.status_code == 200
        assert again.get_json()["case"] == first.get_json()["case"]
    # The same client_id with something else to say is another report: refused, not merged.
    moved = client.post("/api/v1/reports", headers=citizen_headers,
                        json={**body, "lon": lon + 0.0005})
    refused(moved, 409, "client_id_reused")
    assert counts() == before


def test_refusals_resends_and_second_runs_take_no_case_number(client, city, citizen_headers):
    """Case numbers follow one another: a refused report, a resend and the statement's run
    that writes nothing (a place this process has not seen yet) leave no gap."""
    lon, lat = city.centre(1)

    def post(**body):
        return client.post("/api/v1/reports", headers=citizen_headers,
                           json={"lon": lon, "lat": lat, "category": "C0101", **body})

    first = post(client_id="numbers-1")
    assert first.status_code == 201
    refused(post(lon=OUTSIDE[0], lat=OUTSIDE[1], client_id="numbers-2"), 422, "outside_city")
    refused(post(category="X9999", client_id="numbers-3"), 422, "unknown_category")
    assert post(client_id="numbers-1").status_code == 200
    intake._PLACES.clear()  # so the next report's statement runs twice
    second = post(category="C0102", client_id="numbers-4")
    assert second.status_code == 201
    first_case, second_case = first.get_json()["case"], second.get_json()["case"]
    assert second_case["id"] == first_case["id"] + 1
    assert int(second_case["code"][8:]) == int(first_case["code"][8:]) + 1


def test_stale_and_forged_tokens_are_refused(client, city, make_user):
    from gridmgr.people.tokens import encode_token

    inspector = make_user("inspector")
    stale = encode_token(inspector, "access", now=datetime.now(UTC) - timedelta(days=2),
                         lifetime=60)
    lon, lat = city.centre(0)
    before = counts()
    for header in (f"Bearer {stale}", "Bearer not.a.token", "Basic abc"):
        answer = client.post("/api/v1/reports", headers={"Authorization": header}, json={
            "lon": lon, "lat": lat, "category": "C0101", "client_id": "stale-1"})
        assert answer.status_code == 401
        assert answer.get_json()["error"]["code"].startswith("token_")
        assert client.get("/api/v1/cases", headers={"Authorization": header}).status_code == 401
    assert counts() == before
    assert client.get("/api/v1/cases").status_code == 401


def test_bad_steps_change_nothing(client, city, make_user, auth_headers):
    inspector = make_user("inspector", region_code=city.grids[0])
    citizen = make_user("citizen")
    chief = make_user("duty_chief")
    lon, lat = city.centre(0)
    case_id = client.post("/api/v1/reports", headers=auth_headers(citizen), json={
        "lon": lon, "lat": lat, "category": "C0101", "client_id": "s-1"}).get_json()["case"]["id"]
    before = counts()
    checks = [
        (auth_headers(citizen), "file", {}, 403, "forbidden"),
        (auth_headers(inspector), "verify", {}, 422, "location_required"),
        (auth_headers(inspector), "verify", {"lon": lon + 0.01, "lat": lat}, 422, "too_far"),
        (auth_headers(inspector), "verify", {"lon": "x", "lat": lat}, 422, "invalid_input"),
        (auth_headers(chief), "dispatch", {"department": "无此部门"}, 409, "conflict"),
        (auth_headers(chief), "cancel", {}, 422, "note_required"),
        (auth_headers(chief), "fly", {}, 404, None),
    ]
    for headers, action, body, status, code in checks:
        refused(client.post(f"/api/v1/cases/{case_id}/{action}", headers=headers, json=body),
                status, code)
    refused(client.post("/api/v1/cases/987654/verify", headers=auth_headers(inspector),
                        json={"lon": lon, "lat": lat}), 404, "case_not_found")
    assert counts() == before


def test_an_id_beyond_any_case_is_not_found(client, city, make_user, auth_headers):
    """Found by the property-based run: an id past PostgreSQL's bigint made the filing's
    prepared statement fail (500)."""
    chief = auth_headers(make_user("duty_chief"))
    before = counts()
    for huge in (2**63, 1585976866332672262144):
        for action in ("file", "dispatch", "verify"):
            refused(client.post(f"/api/v1/cases/{huge}/{action}", headers=chief, json={}),
                    404, "case_not_found")
        refused(client.get(f"/api/v1/cases/{huge}", headers=chief), 404, "case_not_found")
    assert counts() == before


LIMITED_INTAKE = """
import json, sys, tempfile
from gridmgr import create_app
url, lon, lat = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
app = create_app({"TESTING": True, "DATABASE_URL": url, "SQLALCHEMY_DATABASE_URI": url,
                  "GRIDMGR_HOME": tempfile.mkdtemp(), "RATELIMIT_ENABLED": True,
                  "SECRET_KEY": "test-secret-key-that-is-long-enough-for-hs256",
                  "GRIDMGR_INTAKE_RATE_LIMIT": "2 per minute"})
client = app.test_client()
answers = []
for n in range(3):
    r = client.post("/api/v1/reports", json={"lon": lon, "lat": lat, "category": "C0101",
                    "client_id": f"flood-{n}"}, environ_base={"REMOTE_ADDR": "203.0.113.9"})
    answers.append([r.status_code, (r.get_json() or {}).get("error", {}).get("code"),
                    r.headers.get("Retry-After")])
print(json.dumps(answers))
"""


def test_public_intake_is_rate_limited(database_url, city):
    import json
    import subprocess
    import sys
    from pathlib import Path

    lon, lat = city.centre(0)
    done = subprocess.run([sys.executable, "-c", LIMITED_INTAKE, database_url, str(lon),
                           str(lat)], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 0, done.stderr
    answers = json.loads(done.stdout.strip().splitlines()[-1])
    assert [a[:2] for a in answers] == [[201, None], [201, None], [429, "too_many_requests"]]
    assert answers[0][2] is None and 0 < int(answers[2][2]) <= 61  # a minute's window
    assert db.session.scalar(text("SELECT count(*) FROM reports")) == 2


REDIS_DOWN_INTAKE = """
import json, sys, tempfile
sys.path.insert(0, "tests")
from live_server import PrivateRedis
from gridmgr import create_app
url, lon, lat, home = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
from pathlib import Path
redis = PrivateRedis(Path(home))
redis.start()
app = create_app({"TESTING": True, "DATABASE_URL": url, "SQLALCHEMY_DATABASE_URI": url,
                  "GRIDMGR_HOME": tempfile.mkdtemp(), "RATELIMIT_ENABLED": True,
                  "RATELIMIT_STORAGE_URI": redis.url,
                  "SECRET_KEY": "test-secret-key-that-is-long-enough-for-hs256",
                  "GRIDMGR_INTAKE_RATE_LIMIT": "2 per minute"})
client = app.test_client()

def post(n):
    r = client.post("/api/v1/reports", json={"lon": lon, "lat": lat, "category": "C0101",
                    "client_id": f"outage-{n}"}, environ_base={"REMOTE_ADDR": "203.0.113.7"})
    return r.status_code

try:
    counted = [post(0)]
    redis.kill()
    during = [post(n) for n in (1, 2, 3)]
finally:
    redis.kill()
print(json.dumps({"counted": counted, "during": during}))
"""


def test_with_redis_down_reports_are_still_accepted_and_still_rate_limited(
        database_url, city, tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    lon, lat = city.centre(0)
    done = subprocess.run([sys.executable, "-c", REDIS_DOWN_INTAKE, database_url, str(lon),
                           str(lat), str(tmp_path)], capture_output=True, text=True,
                          timeout=120, cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 0, done.stderr
    answers = json.loads(done.stdout.strip().splitlines()[-1])
    assert answers["counted"] == [201]
    # Redis gone: the count goes on in memory (from zero), so no report fails for the outage
    # and the limit still holds.
    assert answers["during"] == [201, 201, 429]
    assert db.session.scalar(text("SELECT count(*) FROM reports")) == 3
