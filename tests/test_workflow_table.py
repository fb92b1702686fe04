"""The workflow table is the rule: for a case in every state the loop reaches, every action tried
by every role through the API answers what the table (with the policy's roles) says, writes the
state, history row and live event the table names or nothing at all, and the case's
``available_actions`` are exactly the actions the API accepts."""

from __future__ import annotations

import io

import pytest
from cityfixtures import city_fixture, jpeg_bytes  # noqa: F401
from sqlalchemy import text

from gridmgr.cases.cli import PAGE, workflow_page
from gridmgr.cases.steps import ACTIONS, ENDPOINTS, PHOTO, case_guard
from gridmgr.extensions import db
from gridmgr.people.policy import can

# How the loop reaches each state from a citizen's report: (actor key, action) in order.
PATHS = {
    "reported": [],
    "verified": [("inspector", "verify")],
    "filed": [("inspector", "verify"), ("duty_chief", "file")],
    "cancelled": [("duty_chief", "cancel")],
    "dispatched": [("inspector", "verify"), ("duty_chief", "file"), ("duty_chief", "dispatch")],
    "accepted": [("inspector", "verify"), ("duty_chief", "file"), ("duty_chief", "dispatch"),
                 ("department", "accept")],
    "handled": [("inspector", "verify"), ("duty_chief", "file"), ("duty_chief", "dispatch"),
                ("department", "accept"), ("department", "handle")],
    "checked": [("inspector", "verify"), ("duty_chief", "file"), ("duty_chief", "dispatch"),
                ("department", "accept"), ("department", "handle"), ("inspector", "check")],
    "closed": [("inspector", "verify"), ("duty_chief", "file"), ("duty_chief", "dispatch"),
               ("department", "accept"), ("department", "handle"), ("inspector", "check"),
               ("duty_chief", "close")],
    "shelved": [("inspector", "verify"), ("duty_chief", "file"), ("duty_chief", "dispatch"),
                ("duty_chief", "shelve")],
}
ROLES = ("citizen", "inspector", "operator", "duty_chief", "dispatcher", "department", "admin")


class World:
    """A city, one user per role, and cases driven through the API."""

    def __init__(self, client, city, make_user, auth_headers):
        self.client, self.city = client, city
        self.lon, self.lat = city.centre(0)
        self.users = {role: make_user(role, region_code=city.grids[0] if role == "inspector"
                                      else None) for role in ROLES}
        self.headers = {role: auth_headers(user) for role, user in self.users.items()}
        self.department_id = self.users["department"].department_id
        self.count = 0

    def body(self, action: str) -> dict:
        """Everything any step may need, so that only the table and policy can refuse it."""
        body = {"note": "按流程处理", "lon": self.lon, "lat": self.lat, "rating": 5,
                "department": str(self.department_id), "worker": str(self.users["inspector"].id),
                "amount": 2, "unit": "natural_days"}
        if action == "dispatch":
            body.pop("worker")  # the inspector stays free to check the department's work
        if action == "merge":
            body["into"] = self.carrier()
        return body

    def carrier(self) -> int:
        """An open case that a merge carries reports on to (one for the whole story)."""
        if not getattr(self, "carrier_id", None):
            answer = self.client.post("/api/v1/reports", headers=self.headers["citizen"], json={
                "lon": self.lon, "lat": self.lat, "category": "C0101", "channel": "app",
                "description": "同一个井盖", "client_id": "table-carrier"})
            assert answer.status_code == 201, answer.get_json()
            self.carrier_id = answer.get_json()["case"]["id"]
        return self.carrier_id

    def post(self, role: str, case_id: int, action: str):
        body = self.body(action)
        if PHOTO in ACTIONS[action].needs:
            body.pop("rating")  # a form carries text; a rating is a JSON number
            return self.client.post(
                f"/api/v1/cases/{case_id}/{action}", headers=self.headers[role],
                data={**{k: str(v) for k, v in body.items()},
                      "photos": [(io.BytesIO(jpeg_bytes()), "after.jpg")]},
                content_type="multipart/form-data")
        return self.client.post(f"/api/v1/cases/{case_id}/{action}",
                                headers=self.headers[role], json=body)

    def case_in(self, state: str) -> int:
        self.count += 1
        answer = self.client.post("/api/v1/reports", headers=self.headers["citizen"], json={
            "lon": self.lon, "lat": self.lat, "category": "C0101", "description": "井盖破损",
            "channel": "app", "client_id": f"table-{self.count}"})
        assert answer.status_code == 201, answer.get_json()
        case_id = answer.get_json()["case"]["id"]
        for role, action in PATHS[state]:
            taken = self.post(role, case_id, action)
            assert taken.status_code == 200, (state, role, action, taken.get_json())
        assert case_row(case_id).state == state
        return case_id

    def available(self, role: str, case_id: int) -> set[str]:
        seen = self.client.get(f"/api/v1/cases/{case_id}", headers=self.headers[role])
        if seen.status_code == 403:
            return set()  # a case one may not see offers nothing
        assert seen.status_code == 200, seen.get_json()
        return {item["action"] for item in seen.get_json()["available_actions"]}


def case_row(case_id: int):
    db.session.rollback()
    return db.session.execute(text(
        "SELECT * FROM cases WHERE id = :id"), {"id": case_id}).one()


def written(case_id: int) -> tuple[int, int, int]:
    """The case's version, its history rows and its live events: what a refusal leaves."""
    db.session.rollback()
    return db.session.execute(text("""
        SELECT c.version,
               (SELECT count(*) FROM case_history h WHERE h.case_id = c.id),
               (SELECT count(*) FROM live_events e WHERE (e.payload->>'id')::bigint = c.id)
        FROM cases c WHERE c.id = :id"""), {"id": case_id}).one()


def expected(world: World, role: str, case_id: int, action: str) -> tuple[str, object]:
    """What the table and the policy's roles say the API answers: ("allowed", row) or
    ("refused", code)."""
    case = case_row(case_id)
    user = world.users[role]
    context = {"region_code": case.grid_code, "city_id": case.city_id,
               "reporter_id": case.reporter_id, "department_id": case.department_id,
               "assignee_id": case.worker_id, "handler_id": case.handler_id}
    row = ACTIONS[action]
    if not can(user, row.permission, **context):
        if not row.requested_as or not can(user, ACTIONS[row.requested_as].permission,
                                           **context):
            return "refused", "forbidden"
        row = ACTIONS[row.requested_as]
    if case.state not in row.sources:
        return "refused", "conflict"
    for guard in row.guards:
        if not case_guard(guard, case, user.id,
                          guard == "not_your_report" and can(user, "case.close", **context)):
            return "refused", guard
    return "allowed", row


@pytest.fixture
def world(client, city, make_user, auth_headers):
    return World(client, city, make_user, auth_headers)


@pytest.mark.parametrize("state", list(PATHS))
def test_every_role_trying_every_action_gets_what_the_table_says(world, state):
    refusals = world.case_in(state)
    for role in ROLES:
        offered = world.available(role, refusals)
        accepted = set()
        for action in ENDPOINTS:
            verdict, detail = expected(world, role, refusals, action)
            if verdict == "refused":
                before = written(refusals)
                answer = world.post(role, refusals, action)
                assert answer.status_code in (403, 409), (state, role, action, answer.get_json())
                assert answer.get_json()["error"]["code"] == detail, (state, role, action)
                assert written(refusals) == before, (state, role, action)  # nothing written
                continue
            case_id = world.case_in(state)
            version, histories, events = written(case_id)
            target = detail.leads_to(state, case_row(case_id).shelved_from)
            answer = world.post(role, case_id, action)
            assert answer.status_code == 200, (state, role, action, answer.get_json())
            accepted.add(action)
            result = answer.get_json()
            assert result["state"] == target and result["action"] == detail.name
            assert case_row(case_id).state == target
            step = db.session.execute(text("""
                SELECT action, from_state, to_state, actor_id FROM case_history
                WHERE case_id = :id ORDER BY id DESC LIMIT 1"""), {"id": case_id}).one()
            assert (step.action, step.from_state, step.to_state, step.actor_id) == (
                detail.name, state, target, world.users[role].id)
            event = db.session.execute(text("""
                SELECT event, payload FROM live_events
                WHERE (payload->>'id')::bigint = :id ORDER BY id DESC LIMIT 1"""),
                {"id": case_id}).one()
            assert event.event == detail.event and event.payload["action"] == detail.name
            assert event.payload["state"] == target
            assert written(case_id) == (version + 1, histories + 1, events + 1)
        assert offered == accepted, (state, role)


def test_a_steps_answer_lists_what_the_actor_may_do_next(world):
    case_id = world.case_in("filed")
    dispatched = world.post("duty_chief", case_id, "dispatch")
    assert dispatched.status_code == 200, dispatched.get_json()
    assert {a["action"] for a in dispatched.get_json()["available_actions"]} == {
        "extend", "shelve"}
    offered = {a["action"]: a for a in world.client.get(
        f"/api/v1/cases/{case_id}", headers=world.headers["department"]).get_json()[
        "available_actions"]}
    # The receiver may accept, return, or ask for more time or shelving (a request).
    assert set(offered) == {"accept", "return", "extend", "shelve"}
    assert offered["extend"]["records"] == "extend_requested"
    assert offered["return"]["needs"] == ["note"]
    listed = world.client.get("/api/v1/cases", headers=world.headers["department"]).get_json()
    (item,) = [i for i in listed["items"] if i["id"] == case_id]
    assert {a["action"] for a in item["available_actions"]} == set(offered)


def test_the_workflow_reference_page_is_made_from_the_table():
    assert PAGE.read_text(encoding="utf-8") == workflow_page(), (
        "docs/workflow.md is stale: run gridmgr workflow doc > docs/workflow.md")
