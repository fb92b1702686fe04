"""A phone that resends a step on a new connection while the first copy is still being handled
gets the first copy's answer, as a later resend does: the step is taken once, both copies 200
with the same body."""

from __future__ import annotations

import threading

from cityfixtures import city_fixture  # noqa: F401
from sqlalchemy import text

from gridmgr.extensions import db


def test_a_verify_sent_twice_at_the_same_moment_is_taken_once_and_both_get_its_answer(
        app, client, city, make_user, auth_headers):
    lon, lat = city.centre(0)
    inspector = make_user("inspector", region_code=city.grids[0])
    headers = auth_headers(inspector)
    for attempt in range(20):
        case_id = client.post("/api/v1/reports", json={
            "lon": lon, "lat": lat, "category": "C0101",
            "client_id": f"race-{attempt}"}).get_json()["case"]["id"]
        barrier = threading.Barrier(2)
        answers = [None, None]

        def send(i, case_id=case_id, barrier=barrier, answers=answers, attempt=attempt):
            with app.test_client() as own:
                barrier.wait()
                answers[i] = own.post(
                    f"/api/v1/cases/{case_id}/verify", json={"lon": lon, "lat": lat},
                    headers={**headers, "Idempotency-Key": f"race-step-{attempt}"})

        threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        assert [a.status_code for a in answers] == [200, 200], [a.get_json() for a in answers]
        assert answers[0].get_json() == answers[1].get_json()
        assert db.session.scalar(text(
            "SELECT count(*) FROM case_history WHERE case_id = :id AND action = 'verify'"),
            {"id": case_id}) == 1
