"""A member of staff reads their messages in the language they chose on their profile
(``PATCH /api/v1/me``), the instance's language until they choose; a language gridmgr does not
write is refused and the profile stays as it was."""

from __future__ import annotations

import pytest
from cityfixtures import city_fixture  # noqa: F401
from outbound_servers import SmtpSink
from sqlalchemy import text
from test_cases_loop import step

from gridmgr.extensions import db
from gridmgr.notify import engine


@pytest.fixture
def smtp(app, monkeypatch):
    sink = SmtpSink()
    sink.start()
    monkeypatch.setitem(app.config, "GRIDMGR_SMTP_URL", sink.url)
    monkeypatch.setitem(app.config, "GRIDMGR_LANGUAGE", "zh")
    yield sink
    sink.stop()


def test_a_crew_member_who_chose_english_is_told_of_a_dispatch_in_english(
        client, city, make_user, auth_headers, smtp):
    inspector = make_user("inspector", region_code=city.grids[1])
    chief = make_user("duty_chief")
    english = make_user("department", department="园林局", email="parks-en@example.org")
    make_user("department", department="园林局", email="parks-zh@example.org")
    me = client.get("/api/v1/me", headers=auth_headers(english)).get_json()
    assert me["language"] is None  # the instance's language until chosen
    changed = client.patch("/api/v1/me", headers=auth_headers(english), json={"language": "en"})
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["language"] == "en"

    lon, lat = city.centre(1)
    answer = client.post("/api/v1/reports", headers=auth_headers(inspector), json={
        "lon": lon, "lat": lat, "category": "E0101", "channel": "patrol", "client_id": "i-1"})
    case_id, code = answer.get_json()["case"]["id"], answer.get_json()["case"]["code"]
    assert step(client, auth_headers(chief), case_id, "file").status_code == 200
    assert step(client, auth_headers(chief), case_id, "dispatch",
                department="园林局").status_code == 200
    for _ in range(5):
        engine.run_once()
    assert [m["Subject"] for m in smtp.to("parks-en@example.org")] == [
        f"Case {code} dispatched to you"]
    assert [m["Subject"] for m in smtp.to("parks-zh@example.org")] == [f"新派遣案件：{code}"]


@pytest.mark.parametrize("language", ["fr", "", 7])
def test_a_language_gridmgr_does_not_write_is_refused_and_the_profile_is_unchanged(
        client, make_user, auth_headers, language):
    worker = make_user("inspector")
    answer = client.patch("/api/v1/me", headers=auth_headers(worker),
                          json={"language": language})
    assert answer.status_code == 422, answer.get_json()
    assert answer.get_json()["error"]["code"] == "invalid_input"
    db.session.rollback()
    assert db.session.scalar(text("SELECT language FROM users WHERE id = :id"),
                             {"id": worker.id}) is None
