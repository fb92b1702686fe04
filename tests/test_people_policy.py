"""The authorization matrix: every role × every action × inside and outside its scope.

The users are built in memory: ``can`` decides from the user and the target alone.
Inside: a case in a unit grid of the user's street 110105001, reported by the user, dispatched
to the user's department and to the user, handled by someone else. Outside: a case in another
district, reported, dispatched and assigned to others.
"""

from __future__ import annotations

import pytest

from gridmgr.errors import Forbidden
from gridmgr.grids.models import Region
from gridmgr.people.models import ROLES, User
from gridmgr.people.policy import ACTIONS, authorize, can, in_scope, scope_filter
from gridmgr.people.tokens import TokenError

CITY = 1
STREET = "110105001"
ME, SOMEONE_ELSE, MY_DEPARTMENT, OTHER_DEPARTMENT = 42, 43, 7, 8

# What each role may do inside its scope: the table of DESIGN.md "Users" and "Case workflow".
INSIDE = {
    "citizen": {"case.report", "case.view", "case.view_private", "case.rate", "region.view",
                "live.join"},
    "inspector": {"case.report", "case.view", "case.verify", "case.check", "case.self_handle",
                  "case.accept", "case.handle", "case.request", "region.view", "live.join",
                  "duty.set", "position.send", "map.view"},
    "operator": {"case.report", "case.view", "case.view_private", "case.file", "case.cancel",
                 "region.view", "live.join", "stats.view", "map.view"},
    "duty_chief": {"case.report", "case.view", "case.view_private", "case.file", "case.cancel",
                   "case.dispatch", "case.check", "case.close", "case.rework", "case.extend",
                   "case.shelve", "region.view", "live.join", "stats.view", "roster.manage",
                   "duty.set", "map.view"},
    "dispatcher": {"case.view", "case.dispatch", "region.view", "live.join", "stats.view",
                   "map.view"},
    "department": {"case.view", "case.accept", "case.return", "case.handle", "case.request",
                   "region.view", "live.join"},
    "admin": set(ACTIONS),
}
# Outside its scope a role keeps only what is open everywhere: reporting and reading boundaries.
OUTSIDE = {role: allowed & {"case.report", "region.view"} for role, allowed in INSIDE.items()}

REQUIRED_ACTIONS = {
    "case.report", "case.view", "case.verify", "case.file", "case.cancel", "case.dispatch",
    "case.accept", "case.return", "case.handle", "case.check", "case.close", "case.rework",
    "case.extend", "case.shelve", "case.self_handle", "case.rate", "case.view_private",
    "region.view", "live.join", "admin.users", "admin.departments", "admin.categories",
    "admin.rules", "stats.view", "roster.manage", "duty.set", "position.send",
}


def _user(role: str, region_code: str | None = STREET, **fields) -> User:
    region = Region(id=5, city_id=CITY, code=region_code, level="street") if region_code else None
    department = MY_DEPARTMENT if role == "department" else None
    fields = {"is_active": True, "city_id": CITY if region_code else None, **fields}
    return User(id=ME, username=f"the-{role}", role=role, region=region,
                department_id=department, **fields)


def _room(role: str, inside: bool) -> str:
    if role == "citizen":
        return f"worker:{ME if inside else SOMEONE_ELSE}"
    if role == "department":
        return f"department:{MY_DEPARTMENT if inside else OTHER_DEPARTMENT}"
    return "region:110105001002" if inside else "region:110106001"


def _target(role: str, inside: bool) -> dict:
    return {
        "region_code": "110105001002003" if inside else "110106001001001",
        "city_id": CITY,
        "reporter_id": ME if inside else SOMEONE_ELSE,
        "department_id": MY_DEPARTMENT if inside else OTHER_DEPARTMENT,
        "assignee_id": ME if inside else SOMEONE_ELSE,
        "handler_id": SOMEONE_ELSE,
        "worker_id": ME if inside else SOMEONE_ELSE,
        "room": _room(role, inside),
    }


def test_every_action_the_system_needs_is_known_and_every_role_is_in_the_table():
    assert set(ACTIONS) >= REQUIRED_ACTIONS
    assert set(INSIDE) == set(ROLES)


@pytest.mark.parametrize("inside", [True, False], ids=["inside", "outside"])
@pytest.mark.parametrize("action", sorted(ACTIONS))
@pytest.mark.parametrize("role", ROLES)
def test_authorization_matrix(role, action, inside):
    user = _user(role, region_code=None if role == "citizen" else STREET)
    expected = action in (INSIDE if inside else OUTSIDE)[role]

    assert can(user, action, **_target(role, inside)) is expected


def test_staff_without_a_region_act_in_the_whole_city_but_not_in_another():
    operator = _user("operator", region_code=None, city_id=CITY)

    assert can(operator, "case.file", region_code="110106001001001", city_id=CITY)
    assert not can(operator, "case.file", region_code="110106001001001", city_id=CITY + 1)
    assert scope_filter(operator) is None


def test_a_street_scoped_user_is_refused_a_city_wide_target():
    chief = _user("duty_chief")

    assert scope_filter(chief) == STREET
    assert not can(chief, "stats.view")  # the whole city's figures
    assert can(chief, "stats.view", region_code=STREET)
    assert in_scope(chief, "110105001") and not in_scope(chief, "11010500")


def test_department_staff_see_only_cases_dispatched_to_their_department():
    staff = _user("department", region_code=None)

    assert can(staff, "case.handle", department_id=MY_DEPARTMENT)
    assert not can(staff, "case.handle", department_id=OTHER_DEPARTMENT)
    assert not can(staff, "case.view")  # a case dispatched to no department


def test_a_worker_works_a_case_dispatched_to_them_outside_their_scope_but_nothing_more():
    inspector = _user("inspector", region_code="110105001002")
    neighbour = {"region_code": "110105001003007", "city_id": CITY}

    for action in ("case.view", "case.accept", "case.handle", "case.request"):
        assert can(inspector, action, assignee_id=ME, **neighbour)
        assert not can(inspector, action, assignee_id=SOMEONE_ELSE, **neighbour)
    assert not can(inspector, "case.verify", assignee_id=ME, **neighbour)


def test_an_inspector_does_not_check_their_own_handling():
    inspector = _user("inspector")
    grid = "110105001002003"

    assert can(inspector, "case.check", region_code=grid, handler_id=SOMEONE_ELSE)
    assert not can(inspector, "case.check", region_code=grid, handler_id=ME)
    assert can(inspector, "case.self_handle", region_code=grid)


def test_anonymous_callers_may_only_report_and_read_boundaries():
    assert {a for a in ACTIONS if can(None, a)} == {"case.report", "region.view"}
    with pytest.raises(TokenError) as refused:
        authorize(None, "case.view")
    assert refused.value.status == 401 and refused.value.code == "token_missing"


def test_a_disabled_user_may_do_nothing():
    assert not any(can(_user("admin", is_active=False), a) for a in ACTIONS)


def test_only_unscoped_command_staff_watch_the_whole_city():
    assert can(_user("dispatcher", region_code=None, city_id=CITY), "live.join",
               room=f"city:{CITY}")
    assert not can(_user("dispatcher", region_code=None, city_id=CITY), "live.join",
                   room=f"city:{CITY + 1}")
    assert not can(_user("dispatcher"), "live.join", room=f"city:{CITY}")
    assert not can(_user("department", region_code=None), "live.join", room=f"city:{CITY}")
    assert not can(_user("citizen", region_code=None), "live.join", room="region:110105")


def test_a_refusal_names_the_action_and_the_scope():
    with pytest.raises(Forbidden) as outside:
        authorize(_user("dispatcher"), "case.dispatch", region_code="110106001001001")
    with pytest.raises(Forbidden) as wrong_role:
        authorize(_user("dispatcher"), "case.close", region_code="110105001002003")

    assert outside.value.status == 403 and outside.value.code == "forbidden"
    assert outside.value.message == "A dispatcher may not dispatch a case outside region 110105001."
    assert wrong_role.value.message == "A dispatcher may not close a case."
    assert wrong_role.value.details == {"action": "case.close", "role": "dispatcher"}


def test_an_unknown_action_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown action"):
        can(_user("admin"), "case.teleport")
