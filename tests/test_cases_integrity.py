"""What the database guarantees: one winner per step, one case per client id, and a history
nobody can rewrite."""

from __future__ import annotations

import threading

import pytest
from cityfixtures import city_fixture  # noqa: F401
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from gridmgr.extensions import db


def race(app, requests: list) -> list:
    """Run each ``(method, url, kwargs)`` in its own thread, client and connection, at once."""
    barrier = threading.Barrier(len(requests))
    answers: list = [None] * len(requests)

    def run(index, method, url, kwargs):
        with app.app_context():
            client = app.test_client()
            barrier.wait()
            response = getattr(client, method)(url, **kwargs)
            answers[index] = (response.status_code, response.get_json())
            db.session.remove()

    threads = [threading.Thread(target=run, args=(i, *r)) for i, r in enumerate(requests)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return answers


def test_two_receivers_accepting_at_once_one_wins_one_gets_409(app, city, make_user,
                                                               auth_headers):
    inspector = make_user("inspector", region_code=city.grids[0])
    chief = make_user("duty_chief")
    first = make_user("department", department="市政局")
    second = make_user("department", department="市政局")
    lon, lat = city.centre(0)
    client = app.test_client()
    for n in range(4):
        case_id = client.post("/api/v1/reports", headers=auth_headers(inspector), json={
            "lon": lon, "lat": lat, "category": "E0101",
            "client_id": f"race-{n}"}).get_json()["case"]["id"]
        for action, body in (("file", {}), ("dispatch", {"department": "市政局"})):
            assert client.post(f"/api/v1/cases/{case_id}/{action}", headers=auth_headers(chief),
                               json=body).status_code == 200
        url = f"/api/v1/cases/{case_id}/accept"
        answers = race(app, [("post", url, {"headers": auth_headers(u), "json": {}})
                             for u in (first, second)])
        assert sorted(status for status, _ in answers) == [200, 409], answers
        loser = next(body for status, body in answers if status == 409)
        assert loser["error"]["code"] == "conflict"
        accepts = db.session.scalar(text(
            "SELECT count(*) FROM case_history WHERE case_id = :id AND action = 'accept'"),
            {"id": case_id})
        assert accepts == 1


def test_a_report_resent_on_two_connections_at_once_makes_one_case(app, city, make_user,
                                                                   auth_headers):
    citizen = make_user("citizen")
    lon, lat = city.centre(3)
    body = {"lon": lon, "lat": lat, "category": "C0101", "client_id": "offline-sync-7"}
    answers = race(app, [("post", "/api/v1/reports",
                          {"headers": auth_headers(citizen), "json": body})] * 3)
    assert sorted(s for s, _ in answers) == [200, 200, 201], answers
    assert len({b["case"]["id"] for _, b in answers}) == 1
    db.session.rollback()
    assert db.session.scalar(text("SELECT count(*) FROM reports")) == 1
    assert db.session.scalar(text("SELECT count(*) FROM cases")) == 1
    assert db.session.scalar(text("SELECT count(*) FROM case_history")) == 1


@pytest.mark.parametrize("statement", [
    "UPDATE case_history SET note = 'rewritten' WHERE id = :id",
    "UPDATE case_history SET to_state = 'closed'",
    "DELETE FROM case_history WHERE id = :id",
])
def test_the_database_refuses_to_change_history(client, city, make_user, auth_headers,
                                                statement):
    citizen = make_user("citizen")
    lon, lat = city.centre(0)
    client.post("/api/v1/reports", headers=auth_headers(citizen), json={
        "lon": lon, "lat": lat, "category": "C0101", "client_id": "h-1"})
    history_id = db.session.scalar(text("SELECT id FROM case_history"))
    with pytest.raises(DBAPIError, match="append-only"):
        db.session.execute(text(statement), {"id": history_id})
    db.session.rollback()
    row = db.session.execute(text("SELECT note, to_state FROM case_history")).one()
    assert (row.note, row.to_state) == (None, "reported")


def test_case_codes_stay_unique_past_a_million_cases(client, city, make_user, auth_headers):
    citizen = make_user("citizen")
    db.session.execute(text("SELECT setval(pg_get_serial_sequence('cases', 'id'), 999998)"))
    db.session.commit()
    lon, lat = city.centre(0)
    codes = [client.post("/api/v1/reports", headers=auth_headers(citizen), json={
        "lon": lon, "lat": lat, "category": "C0101", "client_id": f"m-{n}"}
    ).get_json()["case"]["code"] for n in range(3)]
    assert [code[8:] for code in codes] == ["999999", "1000000", "1000001"]
