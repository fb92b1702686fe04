"""A property-based run over the OpenAPI document: the case and report endpoints never answer
with a 5xx, and every answer matches the document (status, content type, body)."""

from __future__ import annotations

import os

import pytest
import schemathesis
from cityfixtures import city_fixture  # noqa: F401
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

OUR_PATHS = r"^/api/v1/(reports|cases|tasks|sync|photos)"
EXAMPLES = int(os.environ.get("CASES_FUZZ_EXAMPLES", 12))  # per operation
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@pytest.fixture
def chief_headers(city, make_user, auth_headers, client):
    chief = make_user("duty_chief")
    # A case to act on, so that paths with ids reach real code as well as 404s.
    inspector = make_user("inspector")
    lon, lat = city.centre(0)
    client.post("/api/v1/reports", headers=auth_headers(inspector), json={
        "lon": lon, "lat": lat, "category": "E0101", "client_id": "fuzz-seed"})
    return auth_headers(chief)


def test_case_endpoints_keep_to_their_document(app, chief_headers):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app).include(
        path_regex=OUR_PATHS)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def keeps_to_the_document(case):
            case.call_and_validate(headers=chief_headers, checks=CHECKS)

        keeps_to_the_document()


def test_every_case_endpoint_is_documented_with_its_errors(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    ours = {p for p in paths if p.startswith(("/api/v1/reports", "/api/v1/cases",
                                              "/api/v1/tasks", "/api/v1/sync",
                                              "/api/v1/photos"))}
    assert {"/api/v1/reports", "/api/v1/reports/track/{token}", "/api/v1/cases",
            "/api/v1/cases/nearby", "/api/v1/cases/{case_id}", "/api/v1/tasks", "/api/v1/sync",
            "/api/v1/photos/{sha256}", "/api/v1/cases/{case_id}/dispatch"} <= ours
    for action in ("verify", "file", "cancel", "dispatch", "accept", "return", "handle",
                   "check", "close", "rework", "extend", "shelve", "self_handle", "rate"):
        responses = paths[f"/api/v1/cases/{{case_id}}/{action}"]["post"]["responses"]
        assert {"200", "401", "403", "404", "409", "422"} <= set(responses)


def test_the_api_page_lists_every_endpoint_with_its_errors(client):
    page = client.get("/api/v1/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    for path in ("/api/v1/reports", "/api/v1/cases/{case_id}/handle", "/api/v1/sync",
                 "/api/v1/tasks", "/api/v1/cases/nearby"):
        assert f"<code>{path}</code>" in html
    assert "photo_too_large" in html and "conflict" in html
    assert "<script" not in html and "http://" not in html.replace("/api/v1/openapi.json", "")
