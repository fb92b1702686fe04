"""Rosters, shifts and working calendars administered from the workbench, in a real headless
Chromium (Debian's) against a real gridmgr server and through the Flask client: an
administrator rosters an inspector on a grid and the dispatch rules then send that grid's case
to the inspector; she changes the shift and the rules stop, removes it; she marks a day as a
holiday and a case dispatched next falls due after it; she moves the working hours and
weekdays and the next case falls due within the new hours, and changes the country; every
change is in the audit log with before and after. A mistake is said next to its field and
changes nothing; other roles are refused with a readable page; a post without the form token
changes nothing. Every request stays on this host and no script or console error occurs;
Chinese and English."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests
from browsers import browser_fixture, chromium  # noqa: F401
from maps_city import STREET_A, build_city, city_staff, dispatch, report
from sqlalchemy import text
from test_workbench_browser import Desk, serving
from test_workbench_pages import form_token, sign_in

from gridmgr.categories.operations import update_category
from gridmgr.dispatch.rules import choose_worker
from gridmgr.extensions import db

GRID = f"{STREET_A}001001"  # the north-west grid of the street's first community
CITY_TZ = ZoneInfo("Asia/Shanghai")

@pytest.fixture
def city(app_ctx):
    return build_city()


@pytest.fixture
def staff(city, make_user):
    return city_staff(city, make_user, ("admin", "operator", "duty_chief", "inspector"))


def audit_rows(action_prefix: str):
    db.session.rollback()  # see what the server committed
    return db.session.execute(text(
        "SELECT actor_name, action, target_kind, before, after FROM audit_log "
        "WHERE action LIKE :prefix ORDER BY id"), {"prefix": action_prefix + "%"}).all()


def roster_rows():
    db.session.rollback()
    return db.session.execute(text(
        "SELECT r.id, u.username, g.code, r.starts, r.ends, r.weekdays FROM roster_entries r "
        "JOIN users u ON u.id = r.user_id JOIN regions g ON g.id = r.grid_id ORDER BY r.id")).all()


def receiver_now(city) -> tuple:
    """Whom the dispatch rules give a case of GRID to now, and by which rule."""
    db.session.rollback()
    lon, lat = city.grid_centre(STREET_A, 1, 0, 3)
    worker_id, rule, _ = choose_worker(GRID, city.city.id, lon, lat)
    return worker_id, rule


def expected_refusal(desk: Desk, status: int) -> None:
    """The refusal the story provokes on purpose is not one of the page's problems: its answer
    and the console's line about it are taken off the list (the answer must be there)."""
    answer = re.compile(rf"^{status} |status of {status} ")
    assert any(answer.search(p) for p in desk.problems), desk.problems
    desk.expected = [*getattr(desk, "expected", []), answer]


def finish(desk: Desk) -> None:
    """Close the desk: no request left the host, no problem but the refusals expected."""
    desk.problems[:] = [p for p in desk.problems
                        if not any(a.search(p) for a in getattr(desk, "expected", []))]
    desk.close()


def submit(page, form: str) -> None:
    with page.expect_navigation():
        page.click(f"{form} button[type=submit]")


@chromium
def test_an_administrator_rosters_an_inspector_and_the_rules_send_her_the_grids_case(
        app, tmp_path, browser, city, staff, auth_headers):
    update_category("C0101", {"auto_dispatch": True})
    with serving(app, tmp_path) as server:
        on_duty = requests.post(f"{server.url}/api/v1/duty", json={"on_duty": True},
                                headers=auth_headers(staff["inspector"]), timeout=10)
        assert on_duty.status_code == 200, on_duty.text
        assert receiver_now(city) != (staff["inspector"].id, "roster")

        admin = Desk(browser, server, "boss")
        page = admin.open("/workbench/admin/rosters")
        assert page.inner_text("h1") == "排班与班次"
        # A worker nobody has: said next to the name field, nothing rostered.
        page.fill("#r-username", "nobody")
        page.fill("#r-grid_code", GRID)
        submit(page, "#add-roster")
        expected_refusal(admin, 404)
        assert page.inner_text("#r-username-error") == "没有这个用户名的用户。"
        assert page.get_attribute("#r-username", "aria-invalid") == "true"
        assert page.input_value("#r-grid_code") == GRID
        assert roster_rows() == [] and audit_rows("roster.") == []

        page.fill("#r-username", "insp")
        submit(page, "#add-roster")
        row = page.locator(f"tr[data-worker='insp'][data-grid='{GRID}']")
        assert "全天" in row.inner_text() and "周日" in row.inner_text()
        assert row.locator("td.on-duty").inner_text() == "是"
        assert "insp" in row.locator("td.receiving").inner_text()
        assert "按排班" in row.locator("td.receiving").inner_text()
        assert receiver_now(city) == (staff["inspector"].id, "roster")

        # The grid's next case, filed through the API, is dispatched to her by the roster.
        lon, lat = city.grid_centre(STREET_A, 1, 0, 3)
        case_id = report(staff["inspector"], lon, lat, "C0101", "井盖缺失")
        db.session.commit()
        filed = requests.post(f"{server.url}/api/v1/cases/{case_id}/file", json={},
                              headers=auth_headers(staff["operator"]), timeout=10)
        assert filed.status_code == 200, filed.text
        db.session.rollback()
        assert db.session.execute(text("SELECT state, worker_id FROM cases WHERE id = :id"),
                                  {"id": case_id}).one() == ("dispatched",
                                                             staff["inspector"].id)

        # A shift that does not cover this hour: the roster no longer answers for now.
        local = datetime.now(CITY_TZ)
        starts = (local + timedelta(hours=2)).strftime("%H:%M")
        ends = (local + timedelta(hours=3)).strftime("%H:%M")
        row.locator("a").click()
        page.wait_for_load_state()
        page.fill("#e-from", starts)
        page.fill("#e-to", ends)
        submit(page, "#change-roster")
        row = page.locator(f"tr[data-worker='insp'][data-grid='{GRID}']")
        assert f"{starts}–{ends}" in row.inner_text()
        assert receiver_now(city) != (staff["inspector"].id, "roster")

        [(entry_id, *_)] = roster_rows()
        admin.open(f"/workbench/admin/rosters/{entry_id}")
        submit(page, "#remove-roster")
        assert roster_rows() == []
        assert "insp" not in page.inner_text("table.roster")

        log = admin.open("/workbench/admin/audit").inner_text("main")
        assert "roster.add" in log and "roster.change" in log and "roster.remove" in log
        assert "网格1" in log  # before and after as the reader writes them, not escaped
        finish(admin)

    added, changed, removed = audit_rows("roster.")
    assert (added.actor_name, added.action, added.before) == ("boss", "roster.add", None)
    assert added.after["username"] == "insp" and added.after["grid_code"] == GRID
    assert added.after["from"] is None and added.after["weekdays"] == [1, 2, 3, 4, 5, 6, 7]
    assert changed.before["from"] is None and changed.after["from"] == starts
    assert changed.after["to"] == ends
    assert removed.before["from"] == starts and removed.after is None


@chromium
def test_an_administrator_marks_a_holiday_and_the_next_deadline_falls_after_it_in_english(
        app, tmp_path, browser, city, staff):
    update_category("C0101", {"limits": {"handle": {"amount": 1, "unit": "working_days"}}})
    chief = staff["duty_chief"]  # files and dispatches
    lon, lat = city.grid_centre(STREET_A, 1, 1, 1)
    before = report(staff["inspector"], lon, lat, "C0101", "路面塌陷")
    dispatch(before, chief, city.department)
    db.session.commit()
    first_due = db.session.scalar(text("SELECT deadline FROM cases WHERE id = :id"),
                                  {"id": before})
    due_day = first_due.astimezone(CITY_TZ).date()

    with serving(app, tmp_path) as server:
        admin = Desk(browser, server, "boss", lang="en")
        page = admin.open(f"/workbench/admin/calendar?month={due_day:%Y-%m}")
        assert page.inner_text("h1").startswith("Working calendar")
        cell = page.locator(f"#day-{due_day.isoformat()}")
        assert cell.get_attribute("data-working") == "true"
        # A day that is not a date: said next to the day field, nothing marked.
        page.fill("#m-name", "City festival")
        page.evaluate("() => { document.querySelector('#m-day').type = 'text'; }")
        page.fill("#m-day", "31/12")
        submit(page, "#mark-day")
        expected_refusal(admin, 422)
        assert page.inner_text("#m-day-error") == "Give the day as a date (YYYY-MM-DD)."
        assert audit_rows("calendar.") == []

        # By keyboard: the day, the kind, the name, then Enter.
        page.focus("#m-day")
        page.fill("#m-day", due_day.isoformat())
        page.keyboard.press("Tab")
        page.select_option("#m-kind", "holiday")
        page.fill("#m-name", "City festival")
        with page.expect_navigation():
            page.press("#m-name", "Enter")
        cell = page.locator(f"#day-{due_day.isoformat()}")
        assert cell.get_attribute("data-working") == "false"
        assert "Day off" in cell.inner_text() and "City festival" in cell.inner_text()
        assert due_day.isoformat() in page.inner_text("table.own-days")

        after = report(staff["inspector"], lon, lat, "C0101", "路面又塌陷")
        dispatch(after, chief, city.department)
        db.session.commit()
        second_due = db.session.scalar(text("SELECT deadline FROM cases WHERE id = :id"),
                                       {"id": after})
        assert second_due.astimezone(CITY_TZ).date() != due_day
        assert second_due - first_due >= timedelta(hours=20), (first_due, second_due)

        # The same day marked again is changed: a working day after all.
        page.fill("#m-day", due_day.isoformat())
        page.select_option("#m-kind", "workday")
        submit(page, "#mark-day")
        assert page.locator(f"#day-{due_day.isoformat()}").get_attribute(
            "data-working") == "true"

        log = admin.open("/workbench/admin/audit").inner_text("main")
        assert "calendar.day" in log and due_day.isoformat() in log and "Audit log" in log
        finish(admin)

    marked, changed = audit_rows("calendar.")
    assert (marked.actor_name, marked.before) == ("boss", None)
    assert marked.after == {"city_id": city.city.id, "city": "wall-city",
                            "day": due_day.isoformat(), "kind": "holiday",
                            "name": "City festival"}
    assert changed.before["kind"] == "holiday" and changed.after["kind"] == "workday"


@chromium
def test_other_roles_are_refused_with_a_readable_page(app, tmp_path, browser, staff):
    with serving(app, tmp_path) as server:
        operator = Desk(browser, server, "op", lang="en")
        page = operator.open("/workbench/admin/rosters")
        expected_refusal(operator, 403)
        assert page.inner_text("h1") == "Not allowed"
        assert "forbidden" in page.inner_text(".refused .code")
        assert page.locator("#add-roster").count() == 0
        finish(operator)

        # A duty chief manages rosters, but not the city's calendar.
        chief = Desk(browser, server, "chief")
        assert chief.open("/workbench/admin/rosters").inner_text("h1") == "排班与班次"
        page = chief.open("/workbench/admin/calendar")
        expected_refusal(chief, 403)
        assert page.locator(".refused").count() == 1 and page.locator("#mark-day").count() == 0
        finish(chief)


def test_a_post_without_the_form_token_or_by_another_role_changes_nothing(
        client, city, staff):
    sign_in(client, "boss")
    for path, data in (("/workbench/admin/rosters", {"username": "insp", "grid_code": GRID}),
                       ("/workbench/admin/calendar", {"day": "2026-12-31", "kind": "holiday"})):
        answer = client.post(path, data=data)
        assert answer.status_code == 400 and "csrf_failed" in answer.text
    client.post("/workbench/logout", data={"csrf_token": form_token(client, "/workbench/cases")})

    sign_in(client, "op")
    token = form_token(client, "/workbench/cases")
    answer = client.post("/workbench/admin/calendar", data={
        "csrf_token": token, "day": "2026-12-31", "kind": "holiday"})
    assert answer.status_code == 403 and "text/html" in answer.content_type
    answer = client.post("/workbench/admin/rosters", data={
        "csrf_token": token, "username": "insp", "grid_code": GRID})
    assert answer.status_code == 403
    assert roster_rows() == []
    assert db.session.scalar(text("SELECT count(*) FROM calendar_days")) == 0
    assert audit_rows("") == []


def test_each_mistake_in_a_shift_is_said_next_to_its_field_and_changes_nothing(client, staff):
    sign_in(client, "boss")
    token = form_token(client, "/workbench/admin/rosters")
    cases = [({"username": "op"}, "r-username-error"),
             ({"grid_code": "110101001001999"}, "r-grid_code-error"),
             ({"from": "08:00", "to": "08:00"}, "r-shift-error"),
             ({"from": "08:00"}, "r-shift-error"),
             ({"weekdays": []}, "r-weekdays-error")]
    for change, where in cases:
        data = {"csrf_token": token, "username": "insp", "grid_code": GRID,
                "weekdays": ["1", "2", "3", "4", "5"], **change}
        answer = client.post("/workbench/admin/rosters", data=data)
        assert answer.status_code in (404, 422), (change, answer.status_code)
        assert re.search(f'id="{where}"', answer.text), (change, answer.text[-2000:])
    assert roster_rows() == [] and audit_rows("roster.") == []
    ok = client.post("/workbench/admin/rosters", data={
        "csrf_token": token, "username": "insp", "grid_code": GRID, "from": "22:00",
        "to": "06:00", "weekdays": ["6", "7"]})
    assert ok.status_code == 303
    twice = client.post("/workbench/admin/rosters", data={
        "csrf_token": token, "username": "insp", "grid_code": GRID, "from": "22:00",
        "to": "06:00", "weekdays": ["1"]})
    assert twice.status_code == 409 and 'id="r-shift-error"' in twice.text
    [row] = roster_rows()
    assert (row.starts.hour, row.ends.hour, row.weekdays) == (22, 6, [6, 7])
    assert len(audit_rows("roster.")) == 1


def test_a_city_calendar_month_shows_national_holidays_and_swapped_working_days(client, staff):
    # 2026: National Day 1–7 October off, Saturday 10 October worked (chinesecalendar).
    sign_in(client, "boss")
    page = client.get("/workbench/admin/calendar?month=2026-10&lang=zh").text
    national_day = re.search(r'id="day-2026-10-01"[^>]*data-working="(\w+)"', page)
    swapped = re.search(r'id="day-2026-10-10"[^>]*data-working="(\w+)"', page)
    assert national_day.group(1) == "false" and swapped.group(1) == "true"
    assert "国家规定" in page and "chinesecalendar" in page
    assert "节假日库尚无" not in page
    # A year no library release covers yet is named, and follows the weekly pattern.
    far = client.get("/workbench/admin/calendar?month=2100-01").text
    assert "节假日库尚无该国 2100 年的日历" in far
    assert re.search(r'id="day-2100-01-01"[^>]*data-working="true"', far)  # a Friday
    assert client.get("/workbench/admin/calendar?month=2026-13").status_code == 422


def test_a_roster_change_through_the_api_is_audited_too(client, staff, auth_headers):
    headers = auth_headers(staff["duty_chief"])
    made = client.post("/api/v1/rosters", json={"username": "insp", "grid_code": GRID,
                                                "from": "08:00", "to": "12:00",
                                                "weekdays": "1-5"}, headers=headers)
    assert made.status_code == 201, made.get_json()
    gone = client.delete(f"/api/v1/rosters/{made.get_json()['id']}", headers=headers)
    assert gone.status_code == 204
    added, removed = audit_rows("roster.")
    assert (added.actor_name, added.action) == ("chief", "roster.add")
    assert added.after["from"] == "08:00" and added.after["weekdays"] == [1, 2, 3, 4, 5]
    assert (removed.actor_name, removed.before["grid_code"]) == ("chief", GRID)


def test_a_streets_administrator_reads_only_her_streets_entries_in_the_audit_log(
        client, city, staff, make_user):
    from maps_city import STREET_B

    make_user("inspector", username="insp_b", region_code=STREET_B)
    make_user("admin", username="street_boss", region_code=STREET_A)
    sign_in(client, "boss")
    token = form_token(client, "/workbench/admin/rosters")
    for username, grid in (("insp", GRID), ("insp_b", f"{STREET_B}001001")):
        answer = client.post("/workbench/admin/rosters", data={
            "csrf_token": token, "username": username, "grid_code": grid,
            "weekdays": ["1"]})
        assert answer.status_code == 303
    answer = client.post("/workbench/admin/calendar", data={
        "csrf_token": token, "day": "2026-12-31", "kind": "holiday", "name": "城市节"})
    assert answer.status_code == 303
    client.post("/workbench/logout", data={"csrf_token": token})

    sign_in(client, "street_boss")
    log = client.get("/workbench/admin/audit").text
    assert GRID in log and "insp" in log
    assert "insp_b" not in log and f"{STREET_B}001001" not in log
    assert "2026-12-31" not in log  # a city-wide change is beyond a street's scope
    client.post("/workbench/logout", data={"csrf_token": form_token(client, "/workbench/cases")})
    sign_in(client, "boss")
    log = client.get("/workbench/admin/audit").text
    assert "insp_b" in log and "2026-12-31" in log


def test_calendar_changes_from_the_command_line_are_in_the_audit_log_too(
        client, runner, city, staff, tmp_path):
    from gridmgr.cli import main

    own = tmp_path / "notice.json"
    own.write_text('{"days": [{"day": "2027-02-15", "kind": "holiday", "name": "春节"}, '
                   '{"day": "2027-02-20", "kind": "workday", "name": "春节调休"}]}',
                   encoding="utf-8")
    for args in (["calendar", "load-holidays", str(own)],
                 ["calendar", "load-holidays", str(own)],  # the same again changes nothing
                 ["calendar", "hours", "--period", "09:00-12:00", "--period", "13:30-17:30"],
                 ["calendar", "country", "US"],
                 ["calendar", "add", "2027-03-01", "--kind", "holiday"]):
        result = runner.invoke(main, args=args)
        assert result.exit_code == 0, result.output
    loaded, hours, country, added = audit_rows("calendar.")
    assert (loaded.action, loaded.actor_name, loaded.before["days"]) == (
        "calendar.load", None, [])
    assert [d["day"] for d in loaded.after["days"]] == ["2027-02-15", "2027-02-20"]
    assert hours.before["periods"] == [["08:00", "12:00"], ["14:00", "18:00"]]
    assert hours.after["periods"] == [["09:00", "12:00"], ["13:30", "17:30"]]
    assert (country.before["country"], country.after["country"]) == ("CN", "US")
    assert added.after["day"] == "2027-03-01"
    sign_in(client, "boss")
    log = client.get("/workbench/admin/audit?lang=en").text
    assert "calendar.load" in log and "calendar.country" in log and "System" in log


def calendar_settings():
    """The city's working periods and weekdays as kept (None: never changed) and its country."""
    db.session.rollback()
    return db.session.execute(text(
        "SELECT w.periods, w.weekdays, c.country FROM cities c "
        "LEFT JOIN working_calendars w ON w.city_id = c.id")).one()


@chromium
def test_an_administrator_moves_the_working_hours_and_the_next_deadline_follows_them(
        app, tmp_path, browser, city, staff):
    update_category("C0101", {"limits": {"handle": {"amount": 1, "unit": "working_days"}}})
    chief = staff["duty_chief"]
    lon, lat = city.grid_centre(STREET_A, 1, 1, 1)
    assert calendar_settings() == (None, None, "CN")

    with serving(app, tmp_path) as server:
        admin = Desk(browser, server, "boss")
        page = admin.open("/workbench/admin/calendar")
        assert page.input_value("#h-hours") == "08:00-12:00, 14:00-18:00"
        assert page.is_checked("#set-hours input[value='5']")
        assert not page.is_checked("#set-hours input[value='6']")

        # A period that ends before it starts: said next to the hours, nothing changed.
        page.fill("#h-hours", "18:00-08:00")
        page.check("#set-hours input[value='6']")
        submit(page, "#set-hours")
        expected_refusal(admin, 422)
        assert page.inner_text("#h-hours-error").startswith("请按时段填写工作时间")
        assert page.get_attribute("#h-hours", "aria-invalid") == "true"
        assert page.input_value("#h-hours") == "18:00-08:00"  # kept to be corrected
        assert page.is_checked("#set-hours input[value='6']")
        assert "08:00–12:00, 14:00–18:00" in page.inner_text("dl.facts")
        assert calendar_settings() == (None, None, "CN") and audit_rows("calendar.") == []

        # A country no library knows: said next to the country, the city keeps China's days.
        page.fill("#k-country", "ZZ")
        submit(page, "#set-country")
        assert page.inner_text("#k-country-error").startswith("没有这个国家的节假日日历")
        assert page.get_attribute("#k-country", "aria-invalid") == "true"
        assert page.locator("#h-hours-error").count() == 0
        assert calendar_settings() == (None, None, "CN") and audit_rows("calendar.") == []

        # An evening shift, Monday to Saturday.
        page.fill("#h-hours", "19:00-20:30")
        page.check("#set-hours input[value='6']")
        submit(page, "#set-hours")
        assert page.url.endswith("#set-hours")
        assert "19:00–20:30" in page.inner_text("dl.facts")
        assert "周六" in page.inner_text("dl.facts")
        assert page.input_value("#h-hours") == "19:00-20:30"
        assert calendar_settings() == ([["19:00", "20:30"]], [1, 2, 3, 4, 5, 6], "CN")

        # A case dispatched now falls due inside the new hours: an hour and a half of work
        # is the whole working day, and under the old hours nothing was due after 18:00.
        db.session.rollback()
        case_id = report(staff["inspector"], lon, lat, "C0101", "路灯不亮")
        dispatch(case_id, chief, city.department)
        db.session.commit()
        due = db.session.scalar(text("SELECT deadline FROM cases WHERE id = :id"),
                                {"id": case_id}).astimezone(CITY_TZ)
        assert "19:00" <= f"{due:%H:%M}" <= "20:30", due
        assert due.isoweekday() != 7, due

        page.fill("#k-country", "us")
        submit(page, "#set-country")
        assert "US · holidays" in page.inner_text("dl.facts")
        log = admin.open("/workbench/admin/audit").inner_text("main")
        assert "calendar.hours" in log and "calendar.country" in log
        finish(admin)

    hours, country = audit_rows("calendar.")
    assert (hours.actor_name, hours.action) == ("boss", "calendar.hours")
    assert (hours.before["periods"], hours.before["weekdays"]) == (
        [["08:00", "12:00"], ["14:00", "18:00"]], [1, 2, 3, 4, 5])
    assert (hours.after["periods"], hours.after["weekdays"]) == (
        [["19:00", "20:30"]], [1, 2, 3, 4, 5, 6])
    assert (country.actor_name, country.before["country"], country.after["country"]) == (
        "boss", "CN", "US")


def test_working_hours_and_country_refused_without_the_token_by_another_role_or_when_wrong(
        client, city, staff):
    sign_in(client, "boss")
    hours = {"periods": "09:00-17:00", "weekdays": ["1", "2", "3"]}
    for path, data in (("/workbench/admin/calendar/hours", hours),
                       ("/workbench/admin/calendar/country", {"country": "US"})):
        answer = client.post(path, data=data)
        assert answer.status_code == 400 and "csrf_failed" in answer.text
    token = form_token(client, "/workbench/admin/calendar")
    mistakes = [({"periods": "9 to 5"}, "h-hours-error"),
                ({"periods": "09:00-12:00, 11:00-17:00"}, "h-hours-error"),
                ({"periods": "09:00-25:00"}, "h-hours-error"),
                ({"weekdays": ["1", "8"]}, "h-weekdays-error"),
                ({"weekdays": ["Monday"]}, "h-weekdays-error")]
    for change, where in mistakes:
        answer = client.post("/workbench/admin/calendar/hours?lang=en",
                             data={"csrf_token": token, **hours, **change})
        assert answer.status_code == 422, change
        assert f'id="{where}"' in answer.text, change
        assert answer.text.count('class="error field-error"') == 1, change
    answer = client.post("/workbench/admin/calendar/country?lang=en",
                         data={"csrf_token": token, "country": ""})
    assert answer.status_code == 422 and 'id="k-country-error"' in answer.text
    assert "two-letter ISO 3166 code" in answer.text
    client.post("/workbench/logout", data={"csrf_token": token})

    sign_in(client, "chief")  # rosters, yes; the city's calendar, no
    token = form_token(client, "/workbench/cases")
    for path, data in (("/workbench/admin/calendar/hours", hours),
                       ("/workbench/admin/calendar/country", {"country": "US"})):
        answer = client.post(path, data={"csrf_token": token, **data})
        assert answer.status_code == 403 and "text/html" in answer.content_type
    assert calendar_settings() == (None, None, "CN")
    assert audit_rows("calendar.") == []
