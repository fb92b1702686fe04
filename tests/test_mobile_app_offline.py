"""The phone app's outbox when no page of the app is open: reports made offline are sent by
the service worker alone (Background Sync) once the network returns, each exactly once, and
the app opened afterwards shows them as sent.

The phone is Debian's Chromium, headless, with a browser profile on disk as a phone has,
against a real gridmgr server. Background Sync is a permission: Playwright's grant of
geolocation refuses every permission it does not name, so this phone is granted both."""

from __future__ import annotations

import time

import pytest
from browsers import LAUNCH, PHONE, chromium, refuse_other_hosts, settled
from cityfixtures import city_fixture  # noqa: F401
from live_server import running_server
from playwright.sync_api import sync_playwright
from sqlalchemy import text

from gridmgr.extensions import db

pytestmark = chromium


@pytest.fixture
def phone(tmp_path, city):
    """A phone with its own browser profile on disk, its position at the city's first grid;
    every request to another host is refused and recorded, every script error recorded."""
    lon, lat = city.centre(0)
    problems: list[str] = []
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tmp_path / "profile", **LAUNCH, **PHONE,
            locale="zh-CN", geolocation={"latitude": lat, "longitude": lon, "accuracy": 12},
            permissions=["geolocation", "background-sync"])
        context.problems = problems
        context.on("weberror", lambda error: problems.append(str(error.error)))
        yield context
        context.close()


def reports(description_like: str) -> tuple[int, int]:
    """Reports stored with such a description, and their distinct client ids."""
    db.session.rollback()  # see what the server committed
    return db.session.execute(text(
        "SELECT count(*), count(DISTINCT client_id) FROM reports WHERE description LIKE :d"),
        {"d": description_like}).one()


def wait_for(predicate, timeout: float) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"still false after {timeout:.0f} s")
        time.sleep(0.2)


def report_offline(page, description: str) -> None:
    """A report on the report form (the app's first screen, the same form again after a
    report), kept on the phone."""
    page.wait_for_selector("#location-text:not(:empty)")
    page.fill("#category", "井盖")
    page.tap("#category-results button[data-code]")
    page.fill("#description", description)
    page.tap("#send")
    page.wait_for_selector("#queued-note")


def test_reports_made_offline_are_sent_by_the_phone_with_every_page_of_the_app_closed(
        app_ctx, app, tmp_path, phone):
    with running_server(app, tmp_path / "server") as server:
        foreign = refuse_other_hosts(phone, server)
        page = phone.pages[0] if phone.pages else phone.new_page()
        page.goto(server.url + "/m/")
        assert settled(page, "navigator.serviceWorker.ready.then(() => true)")
        page.reload()  # now under the service worker's control, the catalogue kept by it
        page.wait_for_selector("#report-form")
        assert page.evaluate("navigator.serviceWorker.controller !== null")
        assert settled(page, """new Promise(resolve => { const check = () => caches.keys()
            .then(keys => keys.some(k => k.endsWith('-data')) ? resolve(true)
              : setTimeout(check, 200)); check(); })""")

        phone.set_offline(True)
        for words in ("路口井盖一", "路口井盖二"):
            report_offline(page, words)
        assert page.evaluate("navigator.serviceWorker.ready.then(r => r.sync.getTags())"
                             ) == ["outbox"]
        for open_page in phone.pages:
            open_page.close()
        assert phone.pages == []
        time.sleep(2)  # the network is still away: nothing may have left the phone
        assert reports("路口井盖_") == (0, 0)

        phone.set_offline(False)
        wait_for(lambda: reports("路口井盖_") == (2, 2), timeout=60)
        assert phone.pages == []  # sent by the service worker alone
        assert phone.service_workers[0].evaluate("self.gridmgrQueue.getAll('outbox').then("
                               "entries => entries.map(e => e.status))") == ["sent", "sent"]
        time.sleep(1.5)  # a second sender would have sent by now
        assert reports("路口井盖_") == (2, 2)

        page = phone.new_page()  # the app again: both reports sent, with their case codes
        page.goto(server.url + "/m/#/mine")
        page.wait_for_selector("#mine li")
        assert page.locator("#mine li").count() == 2
        assert page.locator("#mine .badge.wait").count() == 0
        codes = page.eval_on_selector_all("#mine .badge", "all => all.map(b => b.textContent)")
        db.session.rollback()
        assert sorted(codes) == sorted(db.session.scalars(text(
            "SELECT c.code FROM cases c JOIN reports r ON r.case_id = c.id "
            "WHERE r.description LIKE '路口井盖_'")).all())
    assert foreign == []
    assert phone.problems == []
