"""Stories of users at the edges of the loop, the intake and the public outputs."""

from __future__ import annotations

from cityfixtures import city_fixture  # noqa: F401
from sqlalchemy import text

from gridmgr.extensions import db


def step(client, headers, case_id, action, **body):
    return client.post(f"/api/v1/cases/{case_id}/{action}", headers=headers, json=body)


def report(client, headers, lon, lat, category="C0101", client_id="phone-1", **body):
    answer = client.post("/api/v1/reports", headers=headers, json={
        "lon": lon, "lat": lat, "category": category, "description": "井盖破损",
        "channel": "app", "client_id": client_id, **body})
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["case"]["id"]


def history_actions(case_id: int) -> list[str]:
    return db.session.execute(text(
        "SELECT action FROM case_history WHERE case_id = :id ORDER BY id"), {"id": case_id}
    ).scalars().all()


# -- rating ------------------------------------------------------------------------------------

def test_a_citizen_who_rates_a_closed_case_twice_is_told_it_is_already_rated(
        client, city, make_user, auth_headers):
    citizen = make_user("citizen")
    case_id = report(client, auth_headers(citizen), *city.centre(0))
    db.session.execute(text("UPDATE cases SET state = 'closed', closed_at = now() "
                            "WHERE id = :id"), {"id": case_id})
    db.session.commit()

    rated = step(client, auth_headers(citizen), case_id, "rate", rating=5, note="很快")
    assert rated.status_code == 200, rated.get_json()
    again = step(client, auth_headers(citizen), case_id, "rate", rating=1, note="改主意了")

    assert again.status_code == 409
    error = again.get_json()["error"]
    assert error["code"] == "already_rated"
    assert "already rated" in error["message"]
    row = db.session.execute(text("SELECT rating, rating_note FROM cases WHERE id = :id"),
                             {"id": case_id}).one()
    assert (row.rating, row.rating_note) == (5, "很快")
    assert history_actions(case_id).count("rate") == 1
