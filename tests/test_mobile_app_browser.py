"""The phone app in a real headless Chromium (Debian's) with a phone's viewport, touch and
geolocation, against a real gridmgr server: a citizen reports with a photo that knows where it
was taken and rates the closed case; reports and a step made offline arrive once the network
returns, exactly once, though the app was closed in between; an inspector on duty gets a case
live and checks it on site, and a check 3 km away is refused with the API's sentence shown; a
field worker accepts, asks for more time and reports the work with an after-photo; an inspector
reports in three taps and reads the map of their grids.
Nothing is fetched from another host and no script error happens."""

from __future__ import annotations

import io

import requests
from browsers import PHONE, browser_fixture, chromium, record_problems, refuse_other_hosts, settled  # noqa: F401
from cityfixtures import city_fixture, jpeg_bytes  # noqa: F401
from live_server import running_server
from sqlalchemy import text

from gridmgr.extensions import db

PASSWORD = "pw-secret-123"

pytestmark = chromium


class Phone:
    """A browser context as a phone: every request checked to stay on this host, every
    script error and failed answer recorded."""

    def __init__(self, browser, server, **options):
        self.url = server.url
        self.context = browser.new_context(**PHONE, **options)
        self.foreign = refuse_other_hosts(self.context, server)
        self.problems: list[str] = []

    def open(self, path: str = "/m/", allowed: tuple[int, ...] = ()):
        page = self.context.new_page()
        record_problems(page, self.problems, allowed)
        page.goto(self.url + path)
        page.wait_for_selector("main h1")
        return page

    def close(self):
        self.context.close()
        assert self.foreign == [], f"requests left the host: {self.foreign}"
        assert self.problems == [], f"errors on the page: {self.problems}"


def scalar(sql: str, **params):
    db.session.rollback()  # see what the server committed
    return db.session.scalar(text(sql), params)


def jpeg_file(tmp_path, lon: float, lat: float):
    path = tmp_path / "manhole.jpg"
    path.write_bytes(jpeg_bytes(width=2400, height=1800, gps=(lon, lat)))
    return path


def step(server, user_headers, case_id, action, photo=False, **body):
    """A staff member's step through the running server (its photos in the server's home)."""
    url = f"{server.url}/api/v1/cases/{case_id}/{action}"
    if photo:
        files = {"photos": ("after.jpg", io.BytesIO(jpeg_bytes()), "image/jpeg")}
        return requests.post(url, headers=user_headers, data=body, files=files, timeout=10)
    return requests.post(url, headers=user_headers, json=body, timeout=10)


def to_handled(server, auth_headers, make_user, city, case_id, lon, lat, verify=True):
    chief = make_user("duty_chief", region_code="110105")
    if verify:
        other = make_user("inspector", region_code=city.grids[0])
        assert step(server, auth_headers(other), case_id, "verify", lon=lon, lat=lat
                    ).status_code == 200
    assert step(server, auth_headers(chief), case_id, "file").status_code == 200
    assert step(server, auth_headers(chief), case_id, "dispatch").status_code == 200
    staff = make_user("department", department=scalar(
        "SELECT d.name FROM departments d JOIN cases c ON c.department_id = d.id "
        "WHERE c.id = :id", id=case_id))
    assert step(server, auth_headers(staff), case_id, "accept").status_code == 200
    handled = step(server, auth_headers(staff), case_id, "handle", photo=True,
                   lon=str(lon), lat=str(lat))
    assert handled.status_code == 200, handled.json()
    return chief


def go(page, hash_: str) -> None:
    """Move inside the app as its links do (a fragment change, no page load)."""
    page.evaluate("hash => { location.hash = hash; }", hash_)


def sign_in(page, username: str):
    go(page, "#/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#sign-in")
    page.wait_for_selector("#tasks")


def test_a_citizen_reports_with_a_located_photo_and_rates_the_closed_case(
        app_ctx, app, client, city, tmp_path, browser, make_user, auth_headers):
    lon, lat = city.centre(0)
    with running_server(app, tmp_path / "server") as server:
        phone = Phone(browser, server, locale="zh-CN")  # no location permission
        page = phone.open()
        assert settled(page, "navigator.serviceWorker.ready.then(() => true)")

        page.set_input_files("#photo", str(jpeg_file(tmp_path, lon, lat)))
        page.wait_for_selector("#use-exif:not([hidden])")
        page.tap("#use-exif")
        assert f"{lat:.5f}" in page.text_content("#location-text")
        page.fill("#category", "井盖")
        page.tap("#category-results button[data-code]")
        page.fill("#description", "井盖缺失，很危险")
        page.tap("#send")
        page.wait_for_selector("#track-link")

        report = db.session.execute(text(
            "SELECT r.case_id, ST_X(r.location) AS lon, ST_Y(r.location) AS lat, p.width "
            "FROM reports r JOIN photos p ON p.report_id = r.id")).one()
        assert abs(report.lon - lon) < 1e-5 and abs(report.lat - lat) < 1e-5
        assert report.width == 1600  # resized on the phone
        page.tap("#track-link")
        page.wait_for_selector("#track-state[data-state=reported]")

        to_handled(server, auth_headers, make_user, city, report.case_id, lon, lat)
        checker = make_user("inspector", region_code="110105001")
        assert step(server, auth_headers(checker), report.case_id, "check", lon=lon, lat=lat
                    ).status_code == 200
        chief = make_user("duty_chief", region_code="110105", username="chief2")
        assert step(server, auth_headers(chief), report.case_id, "close").status_code == 200

        page.reload()
        page.wait_for_selector("#track-state[data-state=closed]")
        assert page.locator("img.photo-after").count() == 1
        page.select_option("#rating", "5")
        page.tap("#rate")
        page.wait_for_selector("#rated")
        assert scalar("SELECT rating FROM cases WHERE id = :id", id=report.case_id) == 5
        assert page.evaluate("navigator.serviceWorker.controller !== null")
        phone.close()


def test_reports_and_a_step_made_offline_arrive_once_after_the_app_was_closed(
        app_ctx, app, client, city, tmp_path, browser, make_user, auth_headers):
    lon, lat = city.centre(0)
    make_user("inspector", username="wang", region_code=city.grids[0], password=PASSWORD)
    case_id = client.post("/api/v1/reports", json={
        "lon": lon, "lat": lat, "category": "C0101"}).get_json()["case"]["id"]
    with running_server(app, tmp_path / "server") as server:
        to_handled(server, auth_headers, make_user, city, case_id, lon, lat)
        # Two senders, as on a phone: the page and the service worker (Background Sync, a
        # permission a grant of geolocation alone would refuse).
        phone = Phone(browser, server, locale="zh-CN", geolocation={
            "latitude": lat, "longitude": lon, "accuracy": 12},
            permissions=["geolocation", "background-sync"])
        page = phone.open()
        assert settled(page, "navigator.serviceWorker.ready.then(() => true)")
        page.reload()  # now under the service worker's control
        page.wait_for_selector("#report-form")
        assert page.evaluate("navigator.serviceWorker.controller !== null")
        sign_in(page, "wang")
        go(page, f"#/case/{case_id}")
        page.wait_for_selector("#step-check")

        phone.context.set_offline(True)
        page.set_input_files("#check-photo", str(jpeg_file(tmp_path, lon, lat)))
        page.tap("#do-check")
        page.wait_for_selector("#check-outcome[data-state=queued]")
        for words in ("第一处井盖", "第二处井盖"):
            go(page, "#/report")
            page.wait_for_selector("#location-text:not(:empty)")
            page.fill("#category", "井盖")
            page.tap("#category-results button[data-code]")
            page.fill("#description", words)
            page.tap("#send")
            page.wait_for_selector("#queued-note")
        page.close()
        assert scalar("SELECT count(*) FROM reports WHERE description LIKE '第_处井盖'") == 0

        # Opened from the phone alone. A second copy of the step reaching the API while the
        # first is taken is refused 409; the outbox asks again with its key.
        page = phone.open("/m/#/mine", allowed=(409,))
        assert page.locator("#mine .badge.wait").count() == 2
        phone.context.set_offline(False)
        # Every entry answered, whoever sent it: nothing is left for a second send.
        assert settled(page, """new Promise(resolve => { const check = () => self.gridmgrQueue
            .getAll('outbox').then(entries => entries.length === 3
              && entries.every(e => e.status === 'sent') ? resolve(true)
              : setTimeout(check, 200)); check(); })""")
        assert scalar("SELECT count(*) FROM reports WHERE description LIKE '第_处井盖'") == 2
        assert scalar("SELECT state FROM cases WHERE id = :id", id=case_id) == "checked"
        assert scalar("SELECT count(DISTINCT client_id) FROM reports "
                      "WHERE description LIKE '第_处井盖'") == 2
        assert scalar("SELECT count(*) FROM case_history WHERE case_id = :id "
                      "AND action = 'check'", id=case_id) == 1
        assert scalar("SELECT count(*) FROM step_requests") == 1
        phone.close()


def test_an_inspector_on_duty_gets_a_case_live_and_checks_it_on_site(
        app_ctx, app, client, city, tmp_path, browser, make_user, auth_headers):
    lon, lat = city.centre(0)
    make_user("inspector", username="li", region_code=city.grids[0], password=PASSWORD)
    with running_server(app, tmp_path / "server") as server:
        far = {"latitude": lat + 0.027, "longitude": lon, "accuracy": 8}  # 3 km north
        phone = Phone(browser, server, locale="en-US", geolocation=far,
                      permissions=["geolocation"])
        page = phone.open(allowed=(422,))
        sign_in(page, "li")
        page.tap("#duty")
        page.wait_for_selector("#duty[aria-pressed=true]")
        assert scalar("SELECT on_duty FROM worker_presence ws JOIN users u ON u.id = ws.user_id "
                      "WHERE u.username = 'li'") is True
        page.wait_for_function("document.body.classList.contains('live')")

        case_id = client.post("/api/v1/reports", json={
            "lon": lon, "lat": lat, "category": "C0101"}).get_json()["case"]["id"]
        to_handled(server, auth_headers, make_user, city, case_id, lon, lat)
        page.wait_for_selector(f"#tasks li[data-case-id='{case_id}'][data-action=check]")
        page.tap(f"#tasks li[data-case-id='{case_id}'] a")
        page.wait_for_selector("#step-check")
        assert page.get_attribute("#navigate", "href").startswith(f"geo:{lat}")

        page.tap("#do-check")
        page.wait_for_selector("#e-check-location:not(:empty)")
        assert "m from the case" in page.text_content("#e-check-location")
        assert scalar("SELECT state FROM cases WHERE id = :id", id=case_id) == "handled"

        phone.context.set_geolocation({"latitude": lat, "longitude": lon, "accuracy": 8})
        page.set_input_files("#check-photo", str(jpeg_file(tmp_path, lon, lat)))
        page.tap("#do-check")
        page.wait_for_selector("#step-outcome[data-state=checked]")
        assert scalar("SELECT state FROM cases WHERE id = :id", id=case_id) == "checked"
        phone.close()


def test_a_field_worker_accepts_asks_for_more_time_and_reports_the_work_with_a_photo(
        app_ctx, app, client, city, tmp_path, browser, make_user, auth_headers):
    lon, lat = city.centre(0)
    case_id = client.post("/api/v1/reports", json={
        "lon": lon, "lat": lat, "category": "C0101"}).get_json()["case"]["id"]
    with running_server(app, tmp_path / "server") as server:
        inspector = make_user("inspector", region_code=city.grids[0])
        assert step(server, auth_headers(inspector), case_id, "verify", lon=lon, lat=lat
                    ).status_code == 200
        chief = make_user("duty_chief", region_code="110105")
        assert step(server, auth_headers(chief), case_id, "file").status_code == 200
        assert step(server, auth_headers(chief), case_id, "dispatch").status_code == 200
        make_user("department", username="zhao", password=PASSWORD, department=scalar(
            "SELECT d.name FROM departments d JOIN cases c ON c.department_id = d.id "
            "WHERE c.id = :id", id=case_id))
        phone = Phone(browser, server, locale="zh-CN", geolocation={
            "latitude": lat, "longitude": lon, "accuracy": 10}, permissions=["geolocation"])
        page = phone.open()
        sign_in(page, "zhao")
        page.wait_for_selector(f"#tasks li[data-case-id='{case_id}'][data-action=accept]")
        page.tap(f"#tasks li[data-case-id='{case_id}'] a")
        page.tap("#do-accept")
        page.wait_for_selector("#step-outcome[data-state=accepted]")

        page.fill("#extend-amount", "2")
        page.select_option("#extend-unit", "working_days")
        page.fill("#extend-note", "需要订购新井盖")
        page.tap("#do-extend")
        page.wait_for_selector("#step-outcome[data-action=extend]")
        assert scalar("SELECT count(*) FROM case_history WHERE case_id = :id "
                      "AND action = 'extend_requested'", id=case_id) == 1

        page.set_input_files("#handle-photo", str(jpeg_file(tmp_path, lon, lat)))
        page.fill("#handle-note", "已更换井盖")
        page.tap("#do-handle")
        page.wait_for_selector("#step-outcome[data-state=handled]")
        assert scalar("SELECT state FROM cases WHERE id = :id", id=case_id) == "handled"
        assert scalar("SELECT count(*) FROM photos WHERE case_id = :id AND stage = 'after'",
                      id=case_id) == 1
        phone.close()


def test_an_inspector_reports_in_three_taps_and_sees_the_map_of_their_grids(
        app_ctx, app, client, city, tmp_path, browser, make_user):
    lon, lat = city.centre(0)
    make_user("inspector", username="sun", region_code=city.grids[0], password=PASSWORD)
    with running_server(app, tmp_path / "server") as server:
        phone = Phone(browser, server, locale="zh-CN", geolocation={
            "latitude": lat, "longitude": lon, "accuracy": 10}, permissions=["geolocation"])
        page = phone.open()
        sign_in(page, "sun")
        page.tap("#patrol-report")
        page.set_input_files("#patrol-photo", str(jpeg_file(tmp_path, lon, lat)))  # 1: photo
        page.tap("#patrol-categories button[data-code]")  # 2: a usual category
        page.tap("#patrol-send")  # 3: send
        page.wait_for_selector("#patrol-sent")
        report = db.session.execute(text(
            "SELECT r.channel, c.grid_code, (SELECT count(*) FROM photos p "
            "WHERE p.report_id = r.id) AS photos FROM reports r JOIN cases c ON c.id = r.case_id"
        )).one()
        assert report == ("patrol", city.grids[0], 1)

        with page.expect_response(lambda r: "/maps/tiles/grids/" in r.url) as tile:
            go(page, "#/grids")
        assert tile.value.status == 200  # the grid tiles of their scope, with their token
        page.wait_for_selector("#forecast li[data-grid]")
        assert page.eval_on_selector_all("#forecast li", "items => items.map(i => i.dataset.grid)"
                                         ) == [city.grids[0]]
        phone.close()
