"""The dispatcher's list and the case page at scale: the rules' proposals for a whole list,
the timeline's people named, and a session that ends refusing the very next page."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from dispatch_world import (
    CATEGORY,
    GRID_A,
    POINT_A,
    POINT_B,
    POINT_OTHER,
    STREET,
    build_city,
    go_on_duty,
    report_and_file,
)
from sqlalchemy import text

from gridmgr.cases.workflow import StepInput, take_step
from gridmgr.categories.models import Category
from gridmgr.dispatch.rosters import add_roster_entry
from gridmgr.dispatch.rules import choose_receiver, choose_receivers
from gridmgr.extensions import db
from gridmgr.people.operations import update_profile

PASSWORD = "pw-secret-123"


def sign_in(client, username: str) -> None:
    page = client.get("/workbench/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    answer = client.post("/workbench/login", data={
        "username": username, "password": PASSWORD, "csrf_token": token})
    assert answer.status_code == 302


@pytest.fixture
def world(app_ctx, make_user):
    """Three filed cases waiting for a dispatcher: in a rostered grid, in a grid of the same
    street with an inspector on patrol nearby, and in a street with nobody on duty."""
    world = build_city(auto_dispatch=False)
    reporter = make_user("inspector", username="reporter", region_code=STREET)
    operator = make_user("operator", username="op", city_id=world["city_id"])
    rostered = make_user("inspector", username="wang", region_code=GRID_A,
                         display_name="王网格")
    patrol = make_user("inspector", username="li", region_code=STREET, display_name="李巡查")
    add_roster_entry("wang", GRID_A)
    go_on_duty(rostered)
    go_on_duty(patrol, (POINT_B[0], POINT_B[1] + 0.0003))
    world["cases"] = {name: report_and_file(reporter, operator, point)
                      for name, point in (("a", POINT_A), ("b", POINT_B),
                                          ("other", POINT_OTHER))}
    world["dispatcher"] = make_user("dispatcher", username="disp", city_id=world["city_id"])
    world["people"] = {"rostered": rostered, "patrol": patrol, "operator": operator}
    return world


def test_the_dispatchers_list_proposes_for_each_case_whom_the_rules_would_send(client, world):
    sign_in(client, "disp")
    page = client.get("/workbench/dispatcher").text
    cards = {case_id: page[page.index(f"/workbench/cases/{case_id}\""):]
             for case_id in world["cases"].values()}
    proposal = {name: re.search(r'class="proposal">([^<]*)<', cards[case_id]).group(1)
                for name, case_id in world["cases"].items()}
    assert "王网格" in proposal["a"] and "城管执法" in proposal["a"]
    assert "李巡查" in proposal["b"] and "王网格" not in proposal["b"]
    assert "王网格" not in proposal["other"] and "李巡查" not in proposal["other"]
    assert "城管执法" in proposal["other"]


def test_the_list_proposals_are_the_rules_answer_for_each_case_alone(world):
    ids = list(world["cases"].values())
    together = choose_receivers(ids)
    category = db.session.scalar(db.select(Category).where(Category.code == CATEGORY))
    for case_id in ids:
        row = db.session.execute(text(
            "SELECT grid_code, city_id FROM cases WHERE id = :id"), {"id": case_id}).one()
        alone = choose_receiver(SimpleNamespace(id=case_id, category=category,
                                                grid_code=row.grid_code, city_id=row.city_id))
        assert together[case_id] == alone
    assert together[world["cases"]["a"]].rule == "roster"
    assert together[world["cases"]["b"]].rule == "nearest"
    assert together[world["cases"]["other"]].worker_id is None


def test_the_case_page_names_who_took_each_step(client, world):
    case_id = world["cases"]["a"]
    take_step(case_id, "dispatch", world["dispatcher"], StepInput(worker="wang"))
    take_step(case_id, "accept", world["people"]["rostered"], StepInput())
    db.session.commit()
    sign_in(client, "disp")
    page = client.get(f"/workbench/cases/{case_id}").text
    actors = re.findall(r'<span class="actor">([^<(]*)', page[page.index('class="timeline"'):])
    assert [a.strip() for a in actors] == ["reporter", "op", "disp", "王网格"]


def test_a_new_password_ends_the_workbench_session_at_the_next_page(client, world):
    sign_in(client, "disp")
    assert client.get("/workbench/dispatcher").status_code == 200
    update_profile(world["dispatcher"], current_password=PASSWORD, password="a-new-secret-456")
    db.session.commit()
    answer = client.get("/workbench/dispatcher")
    assert answer.status_code == 302 and "/workbench/login" in answer.headers["Location"]
    assert client.get("/workbench/dispatcher", query_string={"fragment": "rows"}
                      ).status_code == 401
