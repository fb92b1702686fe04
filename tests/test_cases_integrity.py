"""What the database guarantees: one winner per step, one case per client id, and a history
nobody can rewrite."""

from __future__ import annotations

import threading

import pytest
from cityfixtures import city_fixture  # noqa: F401
from flask import Flask
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from gridmgr import create_app
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


def test_two_operators_filing_a_report_at_once_file_and_dispatch_it_once(
        app, city, make_user, auth_headers):
    inspector = make_user("inspector", region_code=city.grids[0])
    operators = [make_user("operator"), make_user("operator")]
    db.session.execute(text("UPDATE categories SET auto_dispatch = true WHERE code = 'E0101'"))
    db.session.commit()
    lon, lat = city.centre(0)
    client = app.test_client()
    for n in range(4):
        case_id = client.post("/api/v1/reports", headers=auth_headers(inspector), json={
            "lon": lon, "lat": lat, "category": "E0101",
            "client_id": f"file-race-{n}"}).get_json()["case"]["id"]
        url = f"/api/v1/cases/{case_id}/file"
        answers = race(app, [("post", url, {"headers": auth_headers(u), "json": {}})
                             for u in operators])
        assert sorted(status for status, _ in answers) == [200, 409], answers
        steps = db.session.execute(text(
            "SELECT action FROM case_history WHERE case_id = :id AND action <> 'report'"),
            {"id": case_id}).scalars().all()
        winner = next(body for status, body in answers if status == 200)
        assert winner["state"] == "dispatched" and steps == ["file", "dispatch"]


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


@pytest.fixture
def second_server(app, database_url, tmp_path):
    """Another server process on the same database, whose connections the test can cut: its
    connections carry their own application name."""
    servers = []

    def start(ping_after_idle: float) -> Flask:
        server = create_app({
            "TESTING": True, "DATABASE_URL": database_url,
            "SQLALCHEMY_DATABASE_URI": database_url, "GRIDMGR_HOME": str(tmp_path),
            "SECRET_KEY": app.config["SECRET_KEY"], "RATELIMIT_ENABLED": False,
            "GRIDMGR_DB_PING_AFTER_IDLE": ping_after_idle,
            "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"application_name": CUT}}})
        servers.append(server)
        return server

    yield start
    for server in servers:
        with server.app_context():
            db.engine.dispose()


CUT = "gridmgr-cut-by-test"


def cut_connections() -> int:
    """What a database restart does to a server's idle pooled connections."""
    return db.session.execute(text(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE application_name = :name"), {"name": CUT}).scalar()


def report(server: Flask, city, n: int):
    lon, lat = city.centre(n)
    with server.app_context():
        return server.test_client().post("/api/v1/reports", json={
            "lon": lon, "lat": lat, "category": "C0101", "client_id": f"cut-{n}"})


def test_a_connection_cut_while_idle_is_replaced_before_the_next_report(second_server, city):
    server = second_server(ping_after_idle=0)
    assert report(server, city, 0).status_code == 201
    assert cut_connections() >= 1
    assert report(server, city, 1).status_code == 201
    assert db.session.scalar(text("SELECT count(*) FROM reports")) == 2


def test_a_connection_cut_in_use_answers_503_and_the_resent_report_is_stored_once(
        second_server, city):
    server = second_server(ping_after_idle=3600)
    assert report(server, city, 0).status_code == 201
    assert cut_connections() >= 1
    refused = report(server, city, 1)
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "1"
    assert refused.get_json()["error"]["code"] == "database_unavailable"
    assert db.session.scalar(text("SELECT count(*) FROM reports")) == 1
    resent = report(server, city, 1)
    assert resent.status_code == 201
    assert db.session.scalar(text("SELECT count(*) FROM reports")) == 2
