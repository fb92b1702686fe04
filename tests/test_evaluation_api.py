"""Directors read the month's evaluation over HTTP (the month of ``evaluation_world.py``): a
street's director never sees another street's people or numbers; CSV export; bad queries."""

from __future__ import annotations

import csv
import io

import pytest
from evaluation_world import STREET_A, STREET_B, build_month


@pytest.fixture
def month(app_ctx, make_user):
    return build_month(make_user)


@pytest.fixture
def as_user(client, auth_headers, month):
    from gridmgr.extensions import db
    from gridmgr.people.models import User

    def _get(username: str, path: str, **headers):
        user = db.session.get(User, month["users"][username])
        return client.get(f"/api/v1/stats/{path}", headers={**auth_headers(user), **headers})

    return _get


def test_a_street_director_sees_only_the_street(as_user):
    for table in ("regions", "departments", "people", "categories"):
        for query in ("", "&level=district", "&level=grid"):
            response = as_user("director_a", f"{table}?period=2026-11{query}")
            assert response.status_code == 200, response.get_json()
            body = response.get_data(as_text=True)
            assert "insp2" not in body and STREET_B not in body
            assert response.get_json()["region"] == STREET_A
    people = as_user("director_a", "people?period=2026-11").get_json()["rows"]
    assert [p["username"] for p in people] == ["insp1"]
    assert (people[0]["score"], people[0]["grade"]) == (85.0, "B")
    regions = as_user("director_a", "regions?period=2026-11&level=district").get_json()
    assert [r["key"] for r in regions["rows"]] == [STREET_A] and regions["level"] == "street"
    assert regions["rows"][0]["counts"]["reported"] == 7  # K1-K7, not K9 and K10 of street B
    departments = {d["name"]: d for d in as_user(
        "director_a", "departments?period=2026-11").get_json()["rows"]}
    assert departments["环卫"]["counts"]["handled"] == 3  # K1, K2, K3 but not K9
    categories = as_user("director_a", "categories?period=2026-11").get_json()["rows"]
    assert sum(c["counts"]["reported"] for c in categories) == 7

    b_people = as_user("director_b", "people?period=2026-11").get_json()["rows"]
    assert [p["username"] for p in b_people] == ["insp2"]


def test_a_street_director_is_refused_other_streets_and_the_district(as_user):
    for region in (STREET_B, "110105", "110105002001001"):
        response = as_user("director_a", f"people?period=2026-11&region={region}")
        assert response.status_code == 403
        assert response.get_json()["error"]["code"] == "forbidden"
    inside = as_user("director_a", "regions?period=2026-11&region=110105001001")
    assert [r["key"] for r in inside.get_json()["rows"]] == ["110105001001001",
                                                            "110105001001002"]


def test_the_city_wide_chief_exports_csv(as_user):
    response = as_user("chief", "regions?period=2026-11&level=street&format=csv")
    assert response.status_code == 200
    assert response.content_type == "text/csv; charset=utf-8"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [(r["key"], r["score"], r["grade"], r["reported"], r["closing_rate"])
            for r in rows] == [(STREET_A, "67.98", "C", "7", "0.6667"),
                               (STREET_B, "57.86", "D", "2", "0.5")]
    by_accept = as_user("chief", "people?period=2026-11", Accept="text/csv")
    people = list(csv.DictReader(io.StringIO(by_accept.get_data(as_text=True))))
    insp1 = next(p for p in people if p["username"] == "insp1")
    assert (insp1["grade"], insp1["missed_rate"]) == ("B", "0.1667")
    w1 = next(p for p in people if p["username"] == "w1")
    assert (w1["score"], w1["missed_rate"], w1["verified_on_time_rate"]) == ("", "", "")


def test_explicit_dates_equal_the_month(as_user):
    month = as_user("chief", "categories?period=2026-11").get_json()
    dates = as_user("chief", "categories?start=2026-11-01&end=2026-12-01").get_json()
    assert month["rows"] == dates["rows"]
    assert dates["period"]["start"] == "2026-11-01T00:00:00+08:00"


@pytest.mark.parametrize("query, status, code", [
    ("period=2026-13", 422, "bad_period"),
    ("", 422, "bad_period"),
    ("start=2026-11-05&end=2026-11-01", 422, "bad_period"),
    ("period=2026-11&start=2026-11-01&end=2026-12-01", 422, "bad_period"),
    ("period=2026-11&level=planet", 422, "invalid_input"),
    ("period=2026-11&region=110105009", 404, "region_not_found"),
    ("period=2026-11&city=atlantis", 404, "unknown_city"),
])
def test_bad_queries_are_refused_with_a_reason(as_user, query, status, code):
    response = as_user("chief", f"regions?{query}")
    assert response.status_code == status, response.get_json()
    assert response.get_json()["error"]["code"] == code


def test_who_may_read_statistics(client, as_user):
    assert as_user("insp1", "regions?period=2026-11").status_code == 403
    assert as_user("w1", "departments?period=2026-11").status_code == 403
    assert as_user("cit", "people?period=2026-11").status_code == 403
    assert client.get("/api/v1/stats/regions?period=2026-11").status_code == 401
    assert as_user("disp", "regions?period=2026-11").status_code == 200


def test_the_endpoints_are_in_the_openapi_document(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert {"/api/v1/stats/regions", "/api/v1/stats/departments", "/api/v1/stats/people",
            "/api/v1/stats/categories"} <= set(paths)


def test_the_stats_endpoints_keep_to_their_document(app, as_user, month, auth_headers):
    """Fuzzed queries never get a 5xx, and every answer (JSON or CSV) matches the document."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import (
        content_type_conformance,
        not_a_server_error,
        response_schema_conformance,
        status_code_conformance,
    )

    from gridmgr.extensions import db
    from gridmgr.people.models import User

    headers = auth_headers(db.session.get(User, month["users"]["director_a"]))
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app).include(
        path_regex=r"^/api/v1/stats/")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 4
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=15, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def keeps_to_the_document(case):
            case.call_and_validate(headers=headers, checks=[
                not_a_server_error, status_code_conformance, content_type_conformance,
                response_schema_conformance])

        keeps_to_the_document()
