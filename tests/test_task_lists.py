"""Task lists are the workflow table's: for a small city with a case in every state the loop
reaches (and an inspector's own report, requests waiting for a duty chief, a case handled by the
inspector, a case dispatched to the inspector outside their grids), every role's task list is
exactly the cases whose ``available_actions`` hold an action the table says a case waits for."""

from __future__ import annotations

import io

import pytest
from cityfixtures import city_fixture, jpeg_bytes  # noqa: F401
from test_workflow_table import PATHS, ROLES, World, case_row, written

from gridmgr.cases.steps import ACTIONS, AWAITED, ON_REQUEST


@pytest.fixture
def world(client, city, make_user, auth_headers):
    return World(client, city, make_user, auth_headers)


def post(world: World, role: str, case_id: int, action: str, body: dict):
    answer = world.client.post(f"/api/v1/cases/{case_id}/{action}", headers=world.headers[role],
                               json=body)
    assert answer.status_code == 200, (action, answer.get_json())
    return answer


def report(world: World, role: str, grid: int = 0) -> int:
    world.count += 1
    lon, lat = world.city.centre(grid)
    answer = world.client.post("/api/v1/reports", headers=world.headers[role], json={
        "lon": lon, "lat": lat, "category": "C0101", "description": "井盖破损",
        "channel": "app", "client_id": f"tasks-{world.count}"})
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["case"]["id"]


def offered(world: World, role: str, case_ids: list[int]) -> dict[int, list[dict]]:
    """Each case's ``available_actions`` for ``role``, read one case at a time."""
    found = {}
    for case_id in case_ids:
        seen = world.client.get(f"/api/v1/cases/{case_id}", headers=world.headers[role])
        if seen.status_code != 403:
            found[case_id] = seen.get_json()["available_actions"]
    return found


def expected_tasks(world: World, role: str, case_ids: list[int]) -> set[tuple[str, int]]:
    """The tasks the table implies: each available action whose row a case waits for (a
    request's approval while that request waits)."""
    found = set()
    for case_id, actions in offered(world, role, case_ids).items():
        pending = (case_row(case_id).pending_request or {}).get("kind")
        for item in actions:
            row = ACTIONS[item["records"]]
            if row.task == AWAITED:
                found.add((item["action"], case_id))
            elif row.task == ON_REQUEST and pending == row.name:
                found.add(("approve", case_id))
    return found


def test_every_roles_task_list_is_what_the_table_and_policy_offer(world):
    cases = [world.case_in(state) for state in PATHS]
    cases.append(report(world, "inspector"))  # an inspector's own report: filed, not verified
    inspector, department = world.users["inspector"], world.department_id
    for kind in ("extend", "shelve"):  # the receiver asks; the request waits for a duty chief
        asked = world.case_in("dispatched")
        post(world, "department", asked, kind, {"note": "等待配件", "amount": 2,
                                                "unit": "natural_days"})
        assert case_row(asked).pending_request["kind"] == kind
        cases.append(asked)
    handled = world.case_in("filed")  # handled by the inspector: someone else checks it
    post(world, "duty_chief", handled, "dispatch", {"worker": str(inspector.id)})
    post(world, "inspector", handled, "accept", {})
    lon, lat = world.city.centre(0)
    answer = world.client.post(
        f"/api/v1/cases/{handled}/handle", headers=world.headers["inspector"],
        data={"lon": str(lon), "lat": str(lat), "photos": [(io.BytesIO(jpeg_bytes()), "a.jpg")]},
        content_type="multipart/form-data")
    assert answer.status_code == 200, answer.get_json()
    cases.append(handled)
    beyond = report(world, "citizen", grid=3)  # outside the inspector's grid, dispatched to them
    post(world, "admin", beyond, "verify", {"lon": world.city.centre(3)[0],
                                            "lat": world.city.centre(3)[1]})
    post(world, "duty_chief", beyond, "file", {})
    post(world, "duty_chief", beyond, "dispatch", {"worker": str(inspector.id),
                                                   "department": str(department)})
    cases.append(beyond)

    for role in ROLES:
        listed = world.client.get("/api/v1/tasks", headers=world.headers[role])
        assert listed.status_code == 200, listed.get_json()
        tasks = {(t["action"], t["case"]["id"]) for t in listed.get_json()["items"]}
        assert tasks == expected_tasks(world, role, cases), role
        # A list decides each situation once; every row still says what its case alone says.
        one_by_one = offered(world, role, cases)
        synced = world.client.get("/api/v1/sync", headers=world.headers[role]).get_json()
        for item in synced["items"] + [t["case"] for t in listed.get_json()["items"]]:
            if item.get("id") in one_by_one and "available_actions" in item:
                assert item["available_actions"] == one_by_one[item["id"]], (role, item["id"])

    inspectors = {(t["action"], t["case"]["id"]) for t in world.client.get(
        "/api/v1/tasks", headers=world.headers["inspector"]).get_json()["items"]}
    assert ("accept", beyond) in inspectors  # their own dispatch, beyond their grid
    assert ("check", handled) not in inspectors  # nobody checks their own handling
    assert {case for action, case in inspectors if action == "verify"} == {cases[0]}
    chiefs = {(t["action"], t["case"]["id"]) for t in world.client.get(
        "/api/v1/tasks", headers=world.headers["duty_chief"]).get_json()["items"]}
    assert {("approve", cases[-4]), ("approve", cases[-3]), ("file", cases[-5])} <= chiefs


def test_an_inspector_who_tries_to_verify_an_inspectors_report_is_refused(world):
    case_id = report(world, "inspector")
    before = written(case_id)
    lon, lat = world.city.centre(0)
    answer = world.client.post(f"/api/v1/cases/{case_id}/verify",
                               headers=world.headers["inspector"], json={"lon": lon, "lat": lat})
    assert answer.status_code == 409
    assert answer.get_json()["error"]["code"] == "not_a_citizen_report"
    assert written(case_id) == before and case_row(case_id).state == "reported"
    offered = world.client.get(f"/api/v1/cases/{case_id}", headers=world.headers["inspector"])
    assert "verify" not in {a["action"] for a in offered.get_json()["available_actions"]}
    filed = world.client.post(f"/api/v1/cases/{case_id}/file", headers=world.headers["operator"],
                              json={})
    assert filed.status_code == 200 and case_row(case_id).state == "filed"
