"""A reporter who files through an Open311 client says which language she reads
(``attribute[language]``): it is kept with her report and her messages are written in it; a
language gridmgr does not write is refused and nothing is filed."""

from __future__ import annotations

import pytest
from open311_world import IN_WEST, build_world, verify_and_file
from outbound_servers import SmtpSink
from sqlalchemy import func, select

from gridmgr.cases.models import Case, Report
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


def post(client, world, **extra):
    return client.post("/open311/v2/requests.json", data={
        "api_key": world.api_key, "service_code": "C9801", "lat": IN_WEST[1],
        "long": IN_WEST[0], "email": "visitor@example.org", "description": "Lamp dark",
        **extra})


def test_a_visitor_who_reads_english_gets_her_messages_in_english(client, app_ctx, smtp):
    world = build_world()
    answer = post(client, world, **{"attribute[language]": "en-GB"})
    assert answer.status_code == 200, answer.data
    report = db.session.scalar(select(Report))
    assert report.attributes["language"] == "en"

    verify_and_file(world, report.case_id)
    for _ in range(5):
        engine.run_once()
    code = db.session.scalar(select(Case.code))
    assert [m["Subject"] for m in smtp.to("visitor@example.org")] == [
        f"Your report is now case {code}"]


@pytest.mark.parametrize("language", ["fr", "klingon"])
def test_a_language_gridmgr_does_not_write_is_refused_and_nothing_is_filed(
        client, app_ctx, language):
    world = build_world()
    answer = post(client, world, **{"attribute[language]": language})
    assert answer.status_code == 400
    [error] = answer.get_json()
    assert error["code"] == 400 and "attribute[language]" in error["description"]
    assert db.session.scalar(select(func.count()).select_from(Report)) == 0
    assert db.session.scalar(select(func.count()).select_from(Case)) == 0
