"""The wall in a real headless Chromium (Debian's), as the command centre sees it.

Signs in through the wall's own form, waits for the first full render, and checks what a
duty chief would: nothing broken, nothing fetched from another host, grid tiles drawn, the
counters right; then a report sent from a phone appears without reloading.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import mapbox_vector_tile
import pytest
from browsers import browser_fixture, chromium, record_problems, refuse_other_hosts, wait_until  # noqa: F401
from live_server import running_server
from maps_city import STREET_A, STREET_B, build_city, dispatch, make_overdue, report, twelve_weeks
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from sqlalchemy import text

from gridmgr.cases.workflow import StepInput, take_step
from gridmgr.dispatch.duty import record_position, set_duty
from gridmgr.extensions import db
from gridmgr.people.tokens import encode_token

ARTIFACTS = Path(__file__).parent / "artifacts"
PASSWORD = "pw-secret-123"
FETCH_BASE64 = """urls => Promise.all(urls.map(url => fetch(url).then(r => r.arrayBuffer())
    .then(b => btoa(String.fromCharCode(...new Uint8Array(b))))))"""

pytestmark = chromium


def database_counters() -> dict:
    """Today's counters and open clocks straight from the tables (Asia/Shanghai days)."""
    today = "(date_trunc('day', now() AT TIME ZONE 'Asia/Shanghai') AT TIME ZONE 'Asia/Shanghai')"
    q = lambda sql: db.session.scalar(text(sql))  # noqa: E731
    steps = {state: q(f"SELECT count(DISTINCT case_id) FROM case_history "
                      f"WHERE to_state = '{state}' AND at >= {today}")
             for state in ("filed", "dispatched", "handled", "closed")}
    return {
        "reported": q(f"SELECT count(*) FROM reports WHERE created_at >= {today}"),
        **steps,
        "red": q("SELECT count(*) FROM cases WHERE deadline < now() AND closed_at IS NULL"),
        "green": q("SELECT count(*) FROM cases WHERE deadline > now() AND closed_at IS NULL "
                   "AND yellow_at > now()"),
        "waiting": q("SELECT count(*) FROM cases WHERE deadline IS NULL "
                     "AND state NOT IN ('closed', 'cancelled')"),
    }


def page_counters(page) -> dict:
    names = ("reported", "filed", "dispatched", "handled", "closed", "red", "green", "waiting")
    return {name: int(page.text_content(f"#c-{name}")) for name in names}


def post_report(base: str, user, lon: float, lat: float) -> dict:
    body = json.dumps({"lon": lon, "lat": lat, "category": "C0101", "description": "井盖缺失",
                       "client_id": uuid.uuid4().hex}).encode()
    request = urllib.request.Request(base + "/api/v1/reports", data=body, method="POST", headers={
        "Content-Type": "application/json",
        "Authorization": f"Bearer {encode_token(user, 'access')}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_the_command_centre_watches_the_city_live(app_ctx, app, tmp_path, browser, make_user):
    city = build_city()
    chief = make_user("duty_chief", username="chief", city_id=city.city.id, password=PASSWORD)
    inspector = make_user("inspector", region_code=STREET_A + "001001")
    cases = [report(inspector, *city.grid_centre(street, c, col, row))
             for street, c, col, row in [(STREET_A, 1, 0, 0), (STREET_A, 1, 2, 1),
                                         (STREET_A, 2, 3, 3), (STREET_B, 1, 1, 1),
                                         (STREET_B, 2, 2, 2)]]
    for case_id in cases[:3]:
        dispatch(case_id, chief, city.department)
    make_overdue(cases[0])
    take_step(cases[3], "file", chief, StepInput())  # waits for the wall's dispatcher
    set_duty(inspector, True)
    record_position(inspector, *city.grid_centre(STREET_A, 1, 3, 3))
    expected = database_counters()
    assert expected["red"] == 1 and expected["green"] == 2 and expected["waiting"] == 2

    with running_server(app, tmp_path / "server") as server:
        context = browser.new_context(viewport={"width": 1600, "height": 900},
                                      locale="zh-CN", timezone_id="UTC")
        foreign = refuse_other_hosts(context, server)
        page = context.new_page()
        problems, tiles = record_problems(page, []), []
        page.on("response", lambda r: "/maps/tiles/grids/" in r.url and tiles.append(r))

        page.goto(server.url + "/wall")
        assert "/wall/login" in page.url
        page.fill("input[name=username]", "chief")
        page.fill("input[name=password]", PASSWORD)
        started = time.monotonic()
        page.click("button[type=submit]")
        try:
            page.wait_for_selector("body[data-wall-ready='1']", state="attached",
                                   timeout=15_000)
        except PlaywrightTimeout:
            loaded = page.evaluate("window.gridWall && JSON.stringify(gridWall.loaded)")
            pytest.fail(f"the wall did not finish its first render: {loaded}; {problems}")
        wait_until(page, "document.getElementById('live-dot').className.includes('on')",
                               10_000)
        first_render = time.monotonic() - started

        assert page_counters(page) == {k: expected[k] for k in page_counters(page)}
        assert page.evaluate("Object.keys(gridWall.markers).length") == 5  # every open case
        assert tiles, "no grid tile was requested"
        assert all(t.status == 200 for t in tiles)
        # The tiles as the page got them (same session), decoded here.
        bodies = [base64.b64decode(b) for b in page.evaluate(FETCH_BASE64, [t.url for t in tiles])]
        features = sum(len(mapbox_vector_tile.decode(b).get("grids", {}).get("features", []))
                       for b in bodies if b)
        assert features >= 64

        before = int(page.text_content("#c-reported"))
        lon, lat = city.grid_centre(STREET_B, 2, 0, 0)
        sent = time.monotonic()
        created = post_report(server.url, inspector, lon, lat)
        case_id = created["case"]["id"]
        wait_until(page,
            f"gridWall.markers[{case_id}] !== undefined && "
            f"document.getElementById('c-reported').textContent === '{before + 1}'",
            2_000)
        delay = time.monotonic() - sent
        assert int(page.text_content("#c-waiting")) == expected["waiting"] + 1

        # A worker on patrol moves: the wall follows.
        assert page.evaluate(f"gridWall.workers[{inspector.id}] !== undefined")
        lon, lat = city.grid_centre(STREET_A, 2, 1, 1)
        record_position(inspector, lon, lat, at=datetime.now(UTC) + timedelta(minutes=1))
        wait_until(page,
            f"Math.abs(gridWall.workers[{inspector.id}].getLatLng().lat - {lat}) < 1e-6",
            2_000)

        # The network drops; a report arrives meanwhile; back on line the wall catches up
        # from its last sequence number (no reload, no new feed query for markers).
        page.evaluate("gridWall.socket.disconnect()")
        missed = post_report(server.url, inspector, *city.grid_centre(STREET_B, 1, 3, 0))
        missed_id = missed["case"]["id"]
        page.wait_for_timeout(500)
        assert page.evaluate(f"gridWall.markers[{missed_id}] === undefined")
        page.evaluate("gridWall.socket.connect()")
        wait_until(page, f"gridWall.markers[{missed_id}] !== undefined", 3_000)
        wait_until(page,
            f"document.getElementById('c-reported').textContent === '{before + 2}'",
            2_000)

        # The dispatcher dispatches a filed case from its card.
        page.evaluate(f"gridWall.openCard({cases[3]})")
        page.wait_for_selector("#dispatch-form button", timeout=3_000)
        page.select_option("#dispatch-form select[name=department_id]",
                           str(city.department.id))
        dispatched = int(page.text_content("#c-dispatched"))
        page.click("#dispatch-form button")
        wait_until(page,
            f"document.getElementById('c-dispatched').textContent === '{dispatched + 1}'",
            3_000)
        state = db.session.scalar(text("SELECT state FROM cases WHERE id = :id"),
                                  {"id": cases[3]})
        assert state == "dispatched"
        # The overdue list: a click flies to the case and opens its card.
        page.click(f"#overdue-list a[data-id='{cases[0]}']")
        wait_until(page,
            f"document.getElementById('case-card').dataset.caseId === '{cases[0]}' && "
            "gridWall.map.getZoom() === 18", 3_000)
        assert page.locator("#case-card .timeline li").count() == 3

        # Back to the whole city; switch on the heat of recent reports and shade the grids
        # by overdue cases.
        page.evaluate("void gridWall.map.fitBounds(gridWall.cfg.bounds, {animate: false})")
        with page.expect_response(lambda r: "/maps/feeds/heat" in r.url) as heat:
            page.get_by_label("上报热力（7天）").check()
        assert len(heat.value.json()["points"]) == expected["reported"] + 2
        with page.expect_response(lambda r: "measure=overdue" in r.url) as shaded:
            page.select_option("#measure", "overdue")
        assert shaded.value.status == 200
        wait_until(page, "gridWall.gridsShownBy === 'overdue'", 5_000)

        ARTIFACTS.mkdir(exist_ok=True)
        page.wait_for_timeout(1_000)  # Leaflet fades new tiles in
        page.screenshot(path=str(ARTIFACTS / "wall.png"))
        context.close()

    assert problems == []
    assert foreign == []
    print(f"first full render {first_render:.2f} s; report to marker {delay * 1000:.0f} ms")


def test_the_prevention_layers_switch_on_and_off(app_ctx, app, tmp_path, browser, make_user):
    """A street's centre switches on next week's forecast and this week's hotspots, reads them,
    switches them off, and changes the language: no error, no other host, no other street."""
    city = build_city()
    busy_a, busy_b = STREET_A + "001013", STREET_B + "001013"
    twelve_weeks(city, busy=[busy_a, busy_b], quiet=[STREET_A + "001014"])
    make_user("duty_chief", username="street", region_code=STREET_A, password=PASSWORD)

    with running_server(app, tmp_path / "server") as server:
        context = browser.new_context(viewport={"width": 1600, "height": 900},
                                      locale="zh-CN", timezone_id="UTC")
        foreign = refuse_other_hosts(context, server)
        page = context.new_page()
        problems, forecast_tiles = record_problems(page, []), []
        page.on("response", lambda r: "measure=forecast" in r.url and forecast_tiles.append(r))
        page.goto(server.url + "/wall/login")
        page.fill("input[name=username]", "street")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("body[data-wall-ready='1']", state="attached", timeout=15_000)
        assert forecast_tiles == []  # off until switched on
        lon, lat = city.grid_centre(STREET_A, 1, 0, 0)
        page.evaluate(f"void gridWall.map.setView([{lat}, {lon}], 15, {{animate: false}})")

        page.get_by_label("下周预测").check()
        wait_until(page, "gridWall.forecastShown === true", 5_000)
        assert page.is_visible("#forecast-legend")
        assert forecast_tiles and all(r.status == 200 for r in forecast_tiles)
        bodies = [base64.b64decode(b) for b in
                  page.evaluate(FETCH_BASE64, [r.url for r in forecast_tiles])]
        shaded = {f["properties"]["code"]: f["properties"]["value"]
                  for b in bodies if b for f in mapbox_vector_tile.decode(b)["grids"]["features"]}
        assert shaded[busy_a] > 0 and all(code.startswith(STREET_A) for code in shaded)

        with page.expect_response(lambda r: "/maps/feeds/hotspots" in r.url) as answer:
            page.get_by_label("热点", exact=True).check()
        codes = {f["properties"]["code"] for f in answer.value.json()["features"]}
        assert busy_a in codes and busy_b not in codes
        wait_until(page, "gridWall.hotspotsShown >= 1", 3_000)
        flag = page.locator(f".hotspot-flag[title='{busy_a}']")
        flag.click()
        page.wait_for_selector(".leaflet-popup .prevention-tip", timeout=3_000)
        tip = page.text_content(".leaflet-popup .prevention-tip")
        assert "热点" in tip and "q值" in tip and "近7天案件 10" in tip

        ARTIFACTS.mkdir(exist_ok=True)
        page.wait_for_timeout(500)
        page.screenshot(path=str(ARTIFACTS / "wall-prevention.png"))
        page.get_by_label("下周预测").uncheck()
        page.get_by_label("热点", exact=True).uncheck()
        assert page.is_hidden("#forecast-legend")
        assert page.locator(".hotspot-flag").count() == 0

        page.goto(server.url + "/wall?lang=en")
        page.wait_for_selector("body[data-wall-ready='1']", state="attached", timeout=15_000)
        with page.expect_response(lambda r: "/maps/feeds/hotspots" in r.url):
            page.get_by_label("Hotspots").check()
        page.get_by_label("Next-week forecast").check()
        page.wait_for_timeout(500)
        context.close()

    assert problems == []
    assert foreign == []
