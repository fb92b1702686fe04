"""Stories about finding cases in the lists: filters by state, category and clock, newest
first, page after page."""

from __future__ import annotations

from cityfixtures import city_fixture  # noqa: F401
from sqlalchemy import text

from gridmgr.extensions import db


def report(client, headers, lon, lat, category, client_id):
    answer = client.post("/api/v1/reports", headers=headers, json={
        "lon": lon, "lat": lat, "category": category, "channel": "patrol",
        "client_id": client_id})
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["case"]["id"]


def file_and_dispatch(client, headers, case_id, **receiver):
    for action, body in (("file", {}), ("dispatch", receiver)):
        answer = client.post(f"/api/v1/cases/{case_id}/{action}", headers=headers, json=body)
        assert answer.status_code == 200, answer.get_json()


def listed(client, headers, **query) -> list[int]:
    answer = client.get("/api/v1/cases", query_string=query, headers=headers)
    assert answer.status_code == 200, answer.get_json()
    return [c["id"] for c in answer.get_json()["items"]]


def paged(client, headers, **query) -> list[int]:
    seen, cursor = [], None
    while True:
        page = client.get("/api/v1/cases", headers=headers, query_string={
            **query, "limit": 1, **({"cursor": cursor} if cursor else {})}).get_json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            return seen


def test_a_duty_chief_filters_the_city_list_by_state_category_and_clock(
        client, city, make_user, auth_headers):
    inspector = make_user("inspector", region_code=city.grids[0])
    chief = make_user("duty_chief")
    mine, theirs = auth_headers(inspector), auth_headers(chief)
    categories = ["C0101", "E0101", "E0101", "C0101", "E0101", "E0101"]
    cases = [report(client, mine, *city.near(n % 4, metres_east=n * 5), category,
                    client_id=f"q-{n}") for n, category in enumerate(categories)]
    for case_id in cases[1:4]:
        file_and_dispatch(client, theirs, case_id)
    late = cases[2]  # its deadline has passed
    db.session.execute(text("UPDATE cases SET deadline = now() - interval '1 hour', "
                            "yellow_at = now() - interval '1 day' WHERE id = :id"), {"id": late})
    db.session.commit()
    newest_first = cases[::-1]

    assert listed(client, theirs, state="dispatched") == [cases[3], cases[2], cases[1]]
    assert listed(client, theirs, state=["dispatched", "dispatched"]) == [
        cases[3], cases[2], cases[1]]
    assert listed(client, theirs, state=["reported", "dispatched"]) == newest_first
    assert listed(client, theirs, category="E0101") == [cases[5], cases[4], cases[2], cases[1]]
    assert listed(client, theirs, category="E0101", state="dispatched") == [cases[2], cases[1]]
    assert listed(client, theirs, category="NO-SUCH") == []
    assert listed(client, theirs, clock="red") == [late]
    assert listed(client, theirs, clock="green") == [cases[3], cases[1]]
    assert listed(client, theirs, clock="paused") == []

    # Pages of one case each walk every match once, newest first.
    assert paged(client, theirs, category="E0101") == [cases[5], cases[4], cases[2], cases[1]]
    assert paged(client, theirs, state="reported") == [cases[5], cases[4], cases[0]]
    assert paged(client, theirs, clock="green") == [cases[3], cases[1]]


def test_an_inspector_filtering_the_list_sees_only_the_own_grid(
        client, city, make_user, auth_headers):
    inspector = make_user("inspector", region_code=city.grids[0])
    neighbour = make_user("inspector", region_code=city.grids[1])
    chief = make_user("duty_chief")
    here = [report(client, auth_headers(inspector), *city.near(0, metres_east=n * 5), "E0101",
                   client_id=f"h-{n}") for n in range(2)]
    there = report(client, auth_headers(neighbour), *city.centre(1), "E0101", client_id="t-1")
    for case_id in (here[0], there):
        file_and_dispatch(client, auth_headers(chief), case_id)

    mine = auth_headers(inspector)
    assert listed(client, mine, category="E0101") == [here[1], here[0]]
    assert listed(client, mine, state="dispatched") == [here[0]]
    assert listed(client, mine, clock="green") == [here[0]]
    assert listed(client, auth_headers(neighbour), clock="green") == [there]


def test_department_staff_see_their_department_s_cases_and_those_given_to_them(
        client, city, make_user, auth_headers):
    inspector = make_user("inspector", region_code=city.grids[0])
    chief = make_user("duty_chief")
    staff = make_user("department", department="市政局")
    gardener = make_user("department", department="园林局")
    cases = [report(client, auth_headers(inspector), *city.near(n % 4, metres_east=n * 5),
                    "E0101", client_id=f"d-{n}") for n in range(5)]
    file_and_dispatch(client, auth_headers(chief), cases[0], department="市政局")
    file_and_dispatch(client, auth_headers(chief), cases[1], department="园林局")
    file_and_dispatch(client, auth_headers(chief), cases[2], department="园林局",
                      worker=staff.username)
    file_and_dispatch(client, auth_headers(chief), cases[3], department="市政局")
    # cases[4] is a fresh report no one has been given yet.

    mine = auth_headers(staff)
    assert listed(client, mine) == [cases[3], cases[2], cases[0]]
    assert paged(client, mine) == [cases[3], cases[2], cases[0]]
    assert listed(client, mine, state="dispatched", clock="green") == [
        cases[3], cases[2], cases[0]]
    assert listed(client, auth_headers(gardener)) == [cases[2], cases[1]]
