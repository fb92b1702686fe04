"""A region named by its code is found the same way everywhere, with the same refusals: an
administrator scoping a user, a chief reading statistics or subscribing a webhook to a region
are told ``region_not_found`` (404) for a code no city has, and ``city_required`` (422) when
several cities of the platform have the code and none is named. Nothing is written."""

from __future__ import annotations

import pytest
from open311_world import build_city
from sqlalchemy import func, select

from gridmgr.errors import InvalidInput, NotFound
from gridmgr.extensions import db
from gridmgr.grids.models import City, Region
from gridmgr.grids.reading import find_region
from gridmgr.people.models import User
from gridmgr.webhooks.models import WebhookEndpoint


def _users() -> int:
    return db.session.scalar(select(func.count(User.id)))


@pytest.fixture
def two_cities(app_ctx):
    """Dongcheng and a second city whose regions were given the same codes (110101…)."""
    build_city()
    build_city(slug="twin", name="双子城", offset=0.01)
    db.session.commit()


def test_a_code_no_city_has_is_region_not_found_whether_a_city_is_named_or_not(app_ctx,
                                                                                 two_cities):
    for city_id in (None, db.session.scalar(select(City.id).where(City.slug == "twin"))):
        with pytest.raises(NotFound) as refused:
            find_region("999999", city_id)
        assert refused.value.code == "region_not_found" and refused.value.status == 404
        assert "999999" in refused.value.message


def test_a_code_two_cities_have_needs_the_city_and_then_finds_that_citys_region(app_ctx,
                                                                                two_cities):
    with pytest.raises(InvalidInput) as refused:
        find_region("110101001")
    assert (refused.value.code, refused.value.status) == ("city_required", 422)
    twin = db.session.scalar(select(City.id).where(City.slug == "twin"))
    region = find_region("110101001", twin)
    assert (region.city_id, region.code) == (twin, "110101001")


def test_an_administrator_who_scopes_a_user_to_an_unknown_region_creates_nobody(
        client, make_user, auth_headers, two_cities):
    admin = make_user("admin", username="root")
    before = _users()
    answer = client.post("/api/v1/admin/users", headers=auth_headers(admin), json={
        "username": "zhao", "password": "pw-secret-123", "role": "inspector",
        "region_code": "999999001"})
    assert answer.status_code == 404
    assert answer.get_json()["error"]["code"] == "region_not_found"
    assert _users() == before


def test_an_administrator_must_name_the_city_of_a_code_two_cities_share(
        client, make_user, auth_headers, two_cities):
    admin = make_user("admin", username="root")
    before = _users()
    fields = {"username": "zhao", "password": "pw-secret-123", "role": "inspector",
              "region_code": "110101001"}
    refused = client.post("/api/v1/admin/users", headers=auth_headers(admin), json=fields)
    assert refused.status_code == 422
    assert refused.get_json()["error"]["code"] == "city_required"
    assert _users() == before
    created = client.post("/api/v1/admin/users", headers=auth_headers(admin),
                          json={**fields, "city": "twin"})
    assert created.status_code == 201, created.get_json()
    zhao = db.session.scalar(select(User).where(User.username == "zhao"))
    assert db.session.get(Region, zhao.region_id).city_id == db.session.scalar(
        select(City.id).where(City.slug == "twin"))


def test_a_chief_asking_statistics_of_an_unknown_region_is_told_region_not_found(
        client, make_user, auth_headers, app_ctx):
    build_city()
    db.session.commit()
    chief = make_user("duty_chief", city_id=db.session.scalar(select(City.id)))
    answer = client.get("/api/v1/stats/regions?period=2026-11&region=110101009",
                        headers=auth_headers(chief))
    assert answer.status_code == 404
    assert answer.get_json()["error"]["code"] == "region_not_found"


def test_a_webhook_for_an_unknown_region_is_refused_and_not_registered(
        client, make_user, auth_headers, app_ctx):
    build_city()
    db.session.commit()
    admin = make_user("admin", username="root")
    answer = client.post("/api/v1/admin/webhooks", headers=auth_headers(admin), json={
        "url": "https://example.org/hook", "secret": "s3cret-long-enough-0001",
        "events": ["case.created"], "region_code": "999999"})
    assert answer.status_code == 404, answer.get_json()
    assert answer.get_json()["error"]["code"] == "region_not_found"
    assert db.session.scalar(select(func.count(WebhookEndpoint.id))) == 0
