"""The administrator's pages and the audit log: every administrative change (through the pages
or the API) is written with who, when, before and after, and the log cannot be edited."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from test_workbench_pages import form_token, sign_in

from gridmgr.extensions import db


@pytest.fixture
def admin(app_ctx, make_user):
    return make_user("admin", username="boss")


def audit_rows():
    return db.session.execute(text(
        "SELECT actor_name, action, target_kind, before, after FROM audit_log ORDER BY id")).all()


def test_an_administrator_creates_a_user_and_the_audit_log_shows_it(client, admin):
    sign_in(client, "boss")
    token = form_token(client, "/workbench/admin")
    answer = client.post("/workbench/admin/users", data={
        "csrf_token": token, "username": "new_op", "password": "a-long-password-1",
        "role": "operator"})
    assert answer.status_code == 303
    [row] = audit_rows()
    assert (row.actor_name, row.action, row.target_kind) == ("boss", "user.create", "user")
    assert row.after["username"] == "new_op" and row.after["role"] == "operator"
    assert "password_hash" not in row.after
    page = client.get("/workbench/admin/audit")
    assert page.status_code == 200 and "user.create" in page.text and "new_op" in page.text


def test_a_role_change_and_a_disable_keep_before_and_after(client, admin, make_user):
    worker = make_user("operator", username="w1")
    sign_in(client, "boss")
    token = form_token(client, f"/workbench/admin/users/{worker.id}")
    client.post(f"/workbench/admin/users/{worker.id}", data={
        "csrf_token": token, "change": "access", "role": "dispatcher"})
    client.post(f"/workbench/admin/users/{worker.id}", data={
        "csrf_token": token, "change": "disable"})
    rows = audit_rows()
    assert [r.action for r in rows] == ["user.update", "user.disable"]
    assert rows[0].before["role"] == "operator" and rows[0].after["role"] == "dispatcher"
    assert rows[1].before["is_active"] is True and rows[1].after["is_active"] is False


def test_an_admin_change_through_the_api_is_audited_too(client, admin, auth_headers):
    answer = client.post("/api/v1/admin/departments", json={"name": "市政"},
                         headers=auth_headers(admin))
    assert answer.status_code == 201, answer.get_json()
    [row] = audit_rows()
    assert row.action == "department.create" and row.after["name"] == "市政"


def test_a_refused_change_writes_no_audit_entry(client, admin):
    sign_in(client, "boss")
    token = form_token(client, "/workbench/admin")
    answer = client.post("/workbench/admin/users", data={
        "csrf_token": token, "username": "x", "password": "short", "role": "operator"})
    assert answer.status_code == 422 and "text/html" in answer.content_type
    assert audit_rows() == []
    no_token = client.post("/workbench/admin/users", data={
        "username": "y", "password": "a-long-password-1", "role": "operator"})
    assert no_token.status_code == 400 and audit_rows() == []


def test_the_audit_log_cannot_be_edited_or_removed(client, admin):
    sign_in(client, "boss")
    client.post("/workbench/admin/departments", data={
        "csrf_token": form_token(client, "/workbench/admin"), "name": "园林"})
    assert len(audit_rows()) == 1
    for statement in ("UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError):
            db.session.execute(text(statement))
        db.session.rollback()
    assert audit_rows()[0].action == "department.create"


def test_an_operator_is_refused_the_administration_and_its_log(client, admin, make_user):
    make_user("operator", username="op")
    sign_in(client, "op")
    for page in ("/workbench/admin", "/workbench/admin/audit"):
        answer = client.get(page)
        assert answer.status_code == 403 and "text/html" in answer.content_type


def test_a_city_administrator_reads_only_her_citys_audit_entries(client, admin, make_user):
    from gridmgr.grids.models import City
    from gridmgr.people import operations

    home, other = City(slug="home-city", name="本市", timezone="Asia/Shanghai"), \
        City(slug="other-city", name="外市", timezone="Asia/Shanghai")
    db.session.add_all([home, other])
    db.session.commit()
    make_user("admin", username="city_boss", city_id=home.id)
    operations.create_user(admin, "theirs", "a-long-password-1", "operator", city="other-city")
    db.session.commit()
    sign_in(client, "city_boss")
    token = form_token(client, "/workbench/admin")
    answer = client.post("/workbench/admin/users", data={
        "csrf_token": token, "username": "ours", "password": "a-long-password-1",
        "role": "operator"})
    assert answer.status_code == 303
    page = client.get("/workbench/admin/audit").text
    assert "ours" in page and "theirs" not in page
    assert {r.after["username"] for r in audit_rows()} == {"ours", "theirs"}


def test_a_categorys_limits_and_automatic_dispatch_changed_on_the_page_are_audited(
        client, admin):
    from gridmgr.categories.operations import load_default_catalogue

    load_default_catalogue()
    db.session.commit()
    sign_in(client, "boss")
    page = client.get("/workbench/admin/categories")
    assert page.status_code == 200 and 'id="cat-C0101"' in page.text
    token = form_token(client, "/workbench/admin/categories")
    bad = client.post("/workbench/admin/categories/C0101", data={
        "csrf_token": token, "handle_amount": "soon", "handle_unit": "working_days"})
    assert bad.status_code == 422 and audit_rows() == []
    answer = client.post("/workbench/admin/categories/C0101", data={
        "csrf_token": token, "handle_amount": "3", "handle_unit": "working_days",
        "auto_dispatch": "on"})
    assert answer.status_code == 303
    limits, auto = db.session.execute(text(
        "SELECT limits, auto_dispatch FROM categories WHERE code = 'C0101'")).one()
    assert limits == {"handle": {"amount": 3, "unit": "working_days"}} and auto is True
    [row] = audit_rows()
    assert (row.actor_name, row.action, row.target_kind) == ("boss", "category.update",
                                                             "category")
    assert row.after["limits"] == limits and row.after["auto_dispatch"] is True
    assert "limits" in row.before


def test_a_category_change_through_the_api_is_audited_too(client, admin, auth_headers):
    from gridmgr.categories.operations import load_default_catalogue

    load_default_catalogue()
    db.session.commit()
    answer = client.patch("/api/v1/admin/categories/C0101", json={"auto_dispatch": True},
                          headers=auth_headers(admin))
    assert answer.status_code == 200, answer.get_json()
    [row] = audit_rows()
    assert row.action == "category.update" and row.after == {"auto_dispatch": True}


def test_a_platform_administrator_makes_and_revokes_an_open311_key_and_both_are_audited(
        client, admin, make_user):
    from gridmgr.grids.models import City
    from gridmgr.open311.keys import find_active_key

    sign_in(client, "boss")
    token = form_token(client, "/workbench/admin/open311-keys")
    made = client.post("/workbench/admin/open311-keys", data={
        "csrf_token": token, "name": "city-app"})
    assert made.status_code == 200
    key = re.search(r'<code id="new-key">([^<]+)</code>', made.text).group(1)
    assert find_active_key(key) is not None
    revoked = client.post("/workbench/admin/open311-keys", data={
        "csrf_token": token, "name": "city-app", "revoke": "1"})
    assert revoked.status_code == 303 and find_active_key(key) is None
    rows = audit_rows()
    assert [r.action for r in rows] == ["open311_key.create", "open311_key.revoke"]
    assert key not in str(rows[0].after) and rows[0].after == {"name": "city-app"}
    # A city's administrator manages her city, not the platform's keys.
    city = City(slug="home-city", name="本市", timezone="Asia/Shanghai")
    db.session.add(city)
    db.session.commit()
    make_user("admin", username="city_boss", city_id=city.id)
    client.post("/workbench/logout", data={"csrf_token": token})
    sign_in(client, "city_boss")
    refused = client.post("/workbench/admin/open311-keys", data={
        "csrf_token": form_token(client, "/workbench/admin"), "name": "hers"})
    assert refused.status_code == 403 and "text/html" in refused.content_type
    assert len(audit_rows()) == 2
