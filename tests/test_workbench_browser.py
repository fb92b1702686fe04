"""The workbench in a real headless Chromium (Debian's) against a real gridmgr server: a
citizen's report goes around the whole loop through the pages alone (the inspector verifies on
site, the operator files, the dispatcher dispatches, the department accepts, asks for more time
and handles with a photo from the desktop, the duty chief approves the extension and closes); a
second operator's open queue shows a new report within a second without reloading; an
administrator creates a user and finds it in the audit log. Every request is checked to stay
on this host and any script error or console error fails the story; Chinese and English."""

from __future__ import annotations

import time
from contextlib import contextmanager

import pytest
import requests
from browsers import browser_fixture, chromium, record_problems, refuse_other_hosts  # noqa: F401
from cityfixtures import jpeg_bytes
from live_server import Server
from maps_city import STREET_A, build_city, city_staff
from sqlalchemy import text

from gridmgr.extensions import db

PASSWORD = "pw-secret-123"

pytestmark = chromium


@pytest.fixture
def city(app_ctx):
    return build_city()


@pytest.fixture
def staff(city, make_user):
    return city_staff(city, make_user)


@contextmanager
def serving(app, tmp_path):
    """A live server; on a machine busy enough that the first start outlasts the helper's
    wait (every module imported cold), a second start, which finds them warm."""
    try:
        server = Server(app, tmp_path / "server")
    except RuntimeError:
        server = Server(app, tmp_path / "server-again")
    try:
        yield server
    finally:
        server.stop()


class Desk:
    """One staff member's browser: every request must stay on this host (others are aborted
    and recorded), every console error, script error and failed answer is recorded."""

    def __init__(self, browser, server, username: str, lang: str = "zh"):
        self.url = server.url
        self.context = browser.new_context(viewport={"width": 1400, "height": 900},
                                           locale="zh-CN" if lang == "zh" else "en-US")
        self.foreign = refuse_other_hosts(self.context, server)
        self.page = self.context.new_page()
        self.page.set_default_timeout(10_000)
        self.problems = record_problems(self.page, [])
        self.page.goto(f"{self.url}/workbench/login?lang={lang}")
        self.page.fill("#username", username)
        self.page.fill("#password", PASSWORD)
        self.page.click("form.login button[type=submit]")
        self.page.wait_for_load_state()

    def open(self, path: str):
        self.page.goto(self.url + path)
        self.page.wait_for_load_state()
        return self.page

    def take(self, action: str, fields: dict | None = None, scope: str = "") -> None:
        """Fill the form of ``action`` (as offered by the page) and submit it."""
        form = self.page.locator(f"{scope} form.action-{action}".strip()).first
        for name, value in (fields or {}).items():
            control = form.locator(f"[name={name}]")
            if control.evaluate("e => e.tagName") == "SELECT":
                control.select_option(value)
            else:
                control.fill(value)
        with self.page.expect_navigation():
            form.locator("button[type=submit]").click()

    def close(self) -> None:
        self.context.close()
        assert self.foreign == [], f"requests left the host: {self.foreign}"
        assert self.problems == [], f"errors on the page: {self.problems}"


def state_of(case_id: int) -> str:
    db.session.rollback()  # see what the server committed
    return db.session.scalar(text("SELECT state FROM cases WHERE id = :id"), {"id": case_id})


def citizen_reports(server, citizen, auth_headers, lon: float, lat: float,
                    description: str) -> int:
    answer = requests.post(f"{server.url}/api/v1/reports", headers=auth_headers(citizen),
                           json={"lon": lon, "lat": lat, "category": "C0101",
                                 "description": description}, timeout=10)
    assert answer.status_code in (200, 201), answer.text
    return answer.json()["case"]["id"]


def test_a_citizens_report_goes_around_the_loop_through_the_pages_alone(
        app, tmp_path, browser, city, staff, auth_headers):
    lon, lat = city.grid_centre(STREET_A, 1, 0, 0)
    photo = tmp_path / "after.jpg"
    photo.write_bytes(jpeg_bytes())
    with serving(app, tmp_path) as server:
        case_id = citizen_reports(server, staff["citizen"], auth_headers, lon, lat,
                                  "人行道井盖缺失")
        path = f"/workbench/cases/{case_id}"

        operator = Desk(browser, server, "op")
        queue = operator.open("/workbench/operator")
        assert "人行道井盖缺失" in queue.inner_text("table.cases")
        # A citizen's report waits for the grid's inspector: nothing to file yet.
        operator.open(path)
        assert operator.page.locator("form.action-file").count() == 0

        inspector = Desk(browser, server, "insp")
        inspector.open(path)
        inspector.take("verify", {"lon": str(lon), "lat": str(lat)})
        assert state_of(case_id) == "verified"

        operator.open(path)
        operator.take("file", {"category": "C0101", "note": "立案"})
        assert state_of(case_id) == "filed"

        dispatcher = Desk(browser, server, "disp")
        page = dispatcher.open("/workbench/dispatcher")
        assert "人行道井盖缺失" in page.inner_text("main")
        dispatcher.take("dispatch", {"department": str(city.department.id)})
        assert state_of(case_id) == "dispatched"

        department = Desk(browser, server, "dept")
        department.open("/workbench/department")
        department.take("accept")
        assert state_of(case_id) == "accepted"
        department.take("extend", {"amount": "1", "unit": "working_days"})
        db.session.rollback()
        assert db.session.scalar(text("SELECT pending_request->>'kind' FROM cases "
                                      "WHERE id = :id"), {"id": case_id}) == "extend"

        chief = Desk(browser, server, "chief")
        assert "人行道井盖缺失" in chief.open("/workbench/chief").inner_text("main")
        chief.take("extend", {"amount": "1"})
        db.session.rollback()
        assert db.session.scalar(text("SELECT extension_count FROM cases WHERE id = :id"),
                                 {"id": case_id}) == 1

        department.open("/workbench/department")
        form = department.page.locator("form.action-handle")
        form.locator("[name=photos]").set_input_files(str(photo))
        department.take("handle", {"lon": str(lon), "lat": str(lat), "note": "已补装井盖"})
        assert state_of(case_id) == "handled"

        inspector.open(path)
        inspector.take("check", {"lon": str(lon), "lat": str(lat)})
        assert state_of(case_id) == "checked"

        chief.open("/workbench/chief")
        chief.take("close", {"note": "结案"})
        assert state_of(case_id) == "closed"
        timeline = chief.open(path).inner_text("ol.timeline")
        assert "已补装井盖" in timeline and "结案" in timeline
        assert chief.page.locator("ol.timeline img").count() >= 1
        for desk in (operator, inspector, dispatcher, department, chief):
            desk.close()


def test_a_second_operators_queue_shows_a_new_report_within_a_second(
        app, tmp_path, browser, city, staff, auth_headers):
    lon, lat = city.grid_centre(STREET_A, 2, 1, 1)
    with serving(app, tmp_path) as server:
        operator = Desk(browser, server, "op2")
        page = operator.open("/workbench/operator")
        _wait_live(page)
        marker = page.evaluate("() => { window.__sameDocument = true; return true; }")
        assert marker
        case_id = citizen_reports(server, staff["citizen"], auth_headers, lon, lat,
                                  "路灯不亮了")
        started = time.monotonic()
        page.locator(f"tr[data-case='{case_id}']").wait_for(timeout=1_000)
        elapsed = time.monotonic() - started
        assert page.evaluate("window.__sameDocument === true")  # no reload happened
        assert "路灯不亮了" in page.inner_text("table.cases") and elapsed <= 1.0
        operator.close()


def _wait_live(page, timeout: float = 10.0) -> None:
    """Until the page's /live connection says it is live (a CSP forbids eval'd waits)."""
    end = time.monotonic() + timeout
    while not page.evaluate("window.workbenchLive ? window.workbenchLive.connected : false"):
        if time.monotonic() > end:
            raise AssertionError("the page never connected to /live")
        time.sleep(0.05)


def test_an_administrator_creates_a_user_and_the_audit_log_shows_it_in_english(
        app, tmp_path, browser, staff):
    with serving(app, tmp_path) as server:
        admin = Desk(browser, server, "boss", lang="en")
        page = admin.open("/workbench/admin")
        assert "Administration" in page.inner_text("h1")
        page.fill("#u-username", "new_operator")
        page.fill("#u-password", "a-long-password-1")
        page.select_option("#u-role", "operator")
        with page.expect_navigation():
            page.click("form[action='/workbench/admin/users'] button[type=submit]")
        assert "new_operator" in page.inner_text("main"), (page.url, page.inner_text("main"))
        log = admin.open("/workbench/admin/audit")
        body = log.inner_text("main")
        assert "user.create" in body and "new_operator" in body and "boss" in body
        assert "Audit log" in body
        admin.close()
    db.session.rollback()
    assert db.session.scalar(text("SELECT count(*) FROM audit_log WHERE action = 'user.create'"
                                  )) == 1
