"""The workbench's pages through the test client: one sign-in for all staff, each role's start
page, readable refusals, CSRF on every form, and the loop's steps taken from the pages."""

from __future__ import annotations

import io
import re

import pytest
from maps_city import STREET_A, build_city, city_staff, report
from PIL import Image
from sqlalchemy import text

from gridmgr.extensions import db

PASSWORD = "pw-secret-123"


@pytest.fixture
def city(app_ctx):
    return build_city()


@pytest.fixture
def staff(city, make_user):
    """One of each staff role in the city; the department user works for its department."""
    return city_staff(city, make_user, ("operator", "dispatcher", "department", "duty_chief",
                                        "admin", "inspector", "citizen"))


def form_token(client, path: str = "/workbench/login") -> str:
    page = client.get(path).text
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def sign_in(client, username: str, password: str = PASSWORD):
    return client.post("/workbench/login", data={
        "username": username, "password": password, "csrf_token": form_token(client)})


def case_row(case_id: int):
    return db.session.execute(text("SELECT state, category_id, department_id FROM cases "
                                   "WHERE id = :id"), {"id": case_id}).one()


def test_a_browser_opening_the_site_is_led_to_the_staff_sign_in(client):
    first = client.get("/")
    assert first.status_code == 302 and first.headers["Location"].endswith("/workbench/")
    second = client.get("/workbench/")
    assert second.status_code == 302 and "/workbench/login" in second.headers["Location"]
    page = client.get("/workbench/login")
    assert page.status_code == 200 and "text/html" in page.content_type
    assert 'name="csrf_token"' in page.text and '<label for="username">' in page.text
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self' 'nonce-" in policy and "unsafe-inline' ;" not in policy
    assert "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]


@pytest.mark.parametrize("role, start", [
    ("operator", "/workbench/operator"), ("dispatcher", "/workbench/dispatcher"),
    ("department", "/workbench/department"), ("duty_chief", "/workbench/chief"),
    ("admin", "/workbench/admin"), ("inspector", "/workbench/cases")])
def test_each_role_lands_on_its_own_start_page(client, staff, role, start):
    answer = sign_in(client, staff[role].username)
    assert answer.status_code == 302 and answer.headers["Location"] == start
    page = client.get(start)
    assert page.status_code == 200, page.text
    assert "HttpOnly" in answer.headers["Set-Cookie"] and "SameSite" in answer.headers["Set-Cookie"]


def test_a_wrong_password_is_refused_on_the_page_and_signs_nobody_in(client, staff):
    answer = sign_in(client, "op", "not-the-password")
    assert answer.status_code == 401 and "role=\"alert\"" in answer.text
    assert client.get("/workbench/operator").status_code == 302


@pytest.mark.parametrize("role, page", [
    ("operator", "/workbench/dispatcher"), ("operator", "/workbench/admin"),
    ("dispatcher", "/workbench/operator"), ("department", "/workbench/chief"),
    ("department", "/workbench/operator"), ("duty_chief", "/workbench/admin"),
    ("inspector", "/workbench/department"), ("citizen", "/workbench/cases")])
def test_a_role_refused_another_roles_page_gets_a_readable_page(client, staff, role, page):
    sign_in(client, staff[role].username)
    answer = client.get(page)
    assert answer.status_code == 403
    assert answer.content_type.startswith("text/html")
    assert "<h1>" in answer.text and 'role="alert"' in answer.text
    assert "forbidden" in answer.text or "staff_only" in answer.text


def test_a_post_without_the_form_token_is_refused_and_changes_nothing(client, staff, city):
    case_id = report(staff["inspector"], *city.grid_centre(STREET_A, 1, 0, 0))
    sign_in(client, "op")
    answer = client.post(f"/workbench/cases/{case_id}/cancel", data={"note": "假的"})
    assert answer.status_code == 400 and "csrf_failed" in answer.text
    assert case_row(case_id).state == "reported"
    forged = client.post(f"/workbench/cases/{case_id}/cancel",
                         data={"note": "假的", "csrf_token": "not-a-token"})
    assert forged.status_code == 400 and case_row(case_id).state == "reported"


def test_the_case_page_offers_exactly_the_available_actions(client, staff, city):
    case_id = report(staff["inspector"], *city.grid_centre(STREET_A, 1, 0, 0))
    sign_in(client, "op")
    page = client.get(f"/workbench/cases/{case_id}").text
    offered = set(re.findall(rf'action="/workbench/cases/{case_id}/(\w+)"', page))
    assert offered == {"file", "cancel", "merge"}
    client.post("/workbench/logout", data={"csrf_token": form_token(client, "/workbench/cases")})
    sign_in(client, "disp")
    page = client.get(f"/workbench/cases/{case_id}").text
    assert re.findall(rf'action="/workbench/cases/{case_id}/(\w+)"', page) == []


def test_an_operator_files_with_the_category_corrected_from_the_page(client, staff, city):
    case_id = report(staff["inspector"], *city.grid_centre(STREET_A, 1, 0, 0))
    sign_in(client, "op")
    token = form_token(client, f"/workbench/cases/{case_id}")
    answer = client.post(f"/workbench/cases/{case_id}/file",
                         data={"category": "C0102", "csrf_token": token})
    assert answer.status_code == 303
    state, category_id, _ = case_row(case_id)
    assert state in ("filed", "dispatched")
    assert db.session.scalar(text("SELECT code FROM categories WHERE id = :id"),
                             {"id": category_id}) == "C0102"


def test_a_step_the_workflow_refuses_is_a_readable_page_and_changes_nothing(client, staff, city):
    case_id = report(staff["inspector"], *city.grid_centre(STREET_A, 1, 0, 0))
    sign_in(client, "op")
    token = form_token(client, f"/workbench/cases/{case_id}")
    no_note = client.post(f"/workbench/cases/{case_id}/cancel", data={"csrf_token": token})
    assert no_note.status_code == 422 and "note_required" in no_note.text
    not_his = client.post(f"/workbench/cases/{case_id}/dispatch", data={"csrf_token": token})
    assert not_his.status_code in (403, 409)
    assert "text/html" in not_his.content_type
    assert case_row(case_id).state == "reported"


def test_a_department_handles_with_a_photo_from_the_desktop(client, staff, city):
    from gridmgr.cases.workflow import StepInput, take_step

    lon, lat = city.grid_centre(STREET_A, 1, 0, 0)
    case_id = report(staff["inspector"], lon, lat)
    take_step(case_id, "file", staff["operator"], StepInput())
    if case_row(case_id).state == "filed":
        take_step(case_id, "dispatch", staff["duty_chief"],
                  StepInput(department=str(city.department.id)))
    sign_in(client, "dept")
    token = form_token(client, "/workbench/department")
    assert client.post(f"/workbench/cases/{case_id}/accept",
                       data={"csrf_token": token}).status_code == 303
    photo = io.BytesIO()
    Image.new("RGB", (64, 48), (90, 120, 30)).save(photo, "JPEG")
    photo.seek(0)
    refused = client.post(f"/workbench/cases/{case_id}/handle", data={
        "csrf_token": token, "lon": lon, "lat": lat})
    assert refused.status_code == 422 and case_row(case_id).state == "accepted"
    answer = client.post(f"/workbench/cases/{case_id}/handle", data={
        "csrf_token": token, "lon": lon, "lat": lat, "note": "已修复",
        "photos": (photo, "after.jpg")}, content_type="multipart/form-data")
    assert answer.status_code == 303, answer.text
    assert case_row(case_id).state == "handled"
    page = client.get(f"/workbench/cases/{case_id}").text
    assert "已修复" in page and "/api/v1/photos/" in page


def test_the_list_filters_and_exports_csv_with_formulas_neutralised(client, staff, city):
    lon, lat = city.grid_centre(STREET_A, 1, 0, 0)
    report(staff["inspector"], lon, lat, description="=HYPERLINK(\"x\") 井盖")
    report(staff["inspector"], lon + 0.001, lat, category="C0102", description="别处的问题")
    sign_in(client, "chief")
    found = client.get("/workbench/cases?q=井盖")
    assert found.status_code == 200 and "HYPERLINK" in found.text and "别处的问题" not in found.text
    exported = client.get("/workbench/cases?q=井盖&format=csv")
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    assert "'=HYPERLINK" in exported.text and "别处的问题" not in exported.text
    bad = client.get("/workbench/cases?clock=purple")
    assert bad.status_code == 422 and "bad_clock" in bad.text


def test_chinese_by_default_english_by_a_switch(client, staff):
    assert "员工登录" in client.get("/workbench/login").text
    assert "Staff sign-in" in client.get("/workbench/login?lang=en").text


def test_the_operator_queue_shows_duplicates_and_who_must_verify_a_citizens_report(
        client, staff, city):
    lon, lat = city.grid_centre(STREET_A, 1, 0, 0)
    first = report(staff["citizen"], lon, lat, description="井盖丢了")
    second = report(staff["citizen"], lon + 0.0001, lat, description="这里没有井盖")
    own = report(staff["inspector"], lon + 0.003, lat, category="C0102", description="巡查上报")
    sign_in(client, "op")
    page = client.get("/workbench/operator").text
    rows = {int(m.group(1)): m.group(2) for m in re.finditer(
        r'<tr data-case="(\d+)">(.*?)</tr>', page, re.S)}
    assert set(rows) == {first, second, own}
    codes = dict(db.session.execute(text("SELECT id, code FROM cases")).all())
    assert codes[second] in rows[first] and codes[first] in rows[second]
    assert codes[first] not in rows[own]
    # The citizen's reports wait for the grid's inspector (the workflow's verify stage); the
    # inspector's own report does not.
    assert "等待网格监督员现场核实" in rows[first] and "insp" in rows[first]
    assert "等待网格监督员现场核实" not in rows[own]
