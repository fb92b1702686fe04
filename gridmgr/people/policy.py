"""Who may do what, where: every permission decision in gridmgr is made here.

HTTP handlers, the live channel and the CLI all ask :func:`can` (or :func:`authorize`, which
raises). A decision has three parts:

1. **Role**: the action must be in the role's list (:data:`ROLE_ACTIONS`; admin has all).
2. **Scope**: a user with a region acts only on targets whose region code starts with that
   region's code, in the same city; a user without a region covers the whole city (a user
   without a city covers every city). Pass ``region_code`` (and ``city_id``) for anything
   located. A region-scoped user is refused a city-wide target (``region_code=None``), except
   for :data:`SCOPE_FREE` actions (anyone may report anywhere and read boundaries).
3. **Relation** to the target, from keyword context:
   ``reporter_id`` (citizens see, rate and read contact details only of their own cases),
   ``department_id`` / ``assignee_id`` (only the receiver of a dispatch accepts, returns,
   handles it or asks for more time; department staff see only cases dispatched to their
   department; the worker a case is assigned to sees and works it even outside their scope),
   ``handler_id`` (nobody checks their own handling), ``worker_id`` (duty and
   position only for oneself unless one manages rosters), ``room`` for ``live.join``
   (``city:{id}``, ``region:{code}``, ``department:{id}``, ``worker:{user_id}``; with
   ``room_city_id``, the city of a region or department room: only one's own city's),
   ``every_city`` for ``admin.users`` / ``admin.departments`` (a staff user or a department
   of no city reaches every city: only an administrator of no city manages it).

Anonymous callers (``user=None``) may only do :data:`ANONYMOUS_ACTIONS`.
"""

from __future__ import annotations

from collections.abc import Callable

from gridmgr.errors import Forbidden, Sentence
from gridmgr.people.models import ROLES, User

# Each action with the phrase used in refusals ("A dispatcher may not <phrase>.").
ACTIONS: dict[str, str] = {
    "case.report": "report a problem",
    "case.view": "see this case",
    "case.view_private": "see the reporter's contact details",
    "case.verify": "verify a report on site",
    "case.file": "file a report as a case",
    "case.cancel": "cancel a report",
    "case.dispatch": "dispatch a case",
    "case.accept": "accept this case",
    "case.return": "return this case as mis-dispatched",
    "case.handle": "feed back the handling of this case",
    "case.request": "ask for an extension or shelving of this case",
    "case.check": "check the handling of this case",
    "case.close": "close a case",
    "case.rework": "send a case back for rework",
    "case.extend": "approve an extension",
    "case.shelve": "shelve a case",
    "case.self_handle": "handle a problem on the spot",
    "case.rate": "rate this case",
    "region.view": "read regions and unit grids",
    "live.join": "listen to this live channel",
    "admin.users": "manage users",
    "admin.departments": "manage departments",
    "admin.categories": "manage categories",
    "admin.rules": "manage dispatch rules and time limits",
    "stats.view": "read statistics and evaluations",
    "map.view": "read the map of grids, hotspots and forecast",
    "roster.manage": "manage duty rosters",
    "duty.set": "set this worker's duty state",
    "position.send": "send this worker's position",
}

ROLE_ACTIONS: dict[str, frozenset[str]] = {
    "citizen": frozenset({"case.report", "case.view", "case.view_private", "case.rate",
                          "region.view", "live.join"}),
    "inspector": frozenset({"case.report", "case.view", "case.verify", "case.check",
                            "case.self_handle", "case.accept", "case.handle", "case.request",
                            "region.view", "live.join", "duty.set", "position.send",
                            "map.view"}),
    "operator": frozenset({"case.report", "case.view", "case.view_private", "case.file",
                           "case.cancel", "region.view", "live.join", "stats.view",
                           "map.view"}),
    "duty_chief": frozenset({"case.report", "case.view", "case.view_private", "case.file",
                             "case.cancel", "case.dispatch", "case.check", "case.close",
                             "case.rework", "case.extend", "case.shelve", "region.view",
                             "live.join", "stats.view", "roster.manage", "duty.set",
                             "map.view"}),
    "dispatcher": frozenset({"case.view", "case.dispatch", "region.view", "live.join",
                             "stats.view", "map.view"}),
    "department": frozenset({"case.view", "case.accept", "case.return", "case.handle",
                             "case.request", "region.view", "live.join"}),
    "admin": frozenset(ACTIONS),
}
assert set(ROLE_ACTIONS) == set(ROLES)

# Who, beyond the role, may take a step of a case: a relation of the actor to the case. The
# workflow table (``gridmgr.cases.steps``) names each step's permission and reads its relation
# here, for its reference text.
RECEIVER_ONLY = "receiver"        # only the receiver of the dispatch (its worker or department)
NOT_HANDLER = "not_handler"       # someone other than the person who handled the case
REPORTER_ONLY = "reporter"        # only the reporter
RELATIONS = {
    RECEIVER_ONLY: "the receiver of the dispatch (its worker or department)",
    NOT_HANDLER: "a different person from the handler",
    REPORTER_ONLY: "the reporter",
}
STEP_RELATIONS: dict[str, str] = {
    "case.accept": RECEIVER_ONLY, "case.return": RECEIVER_ONLY, "case.handle": RECEIVER_ONLY,
    "case.request": RECEIVER_ONLY, "case.check": NOT_HANDLER, "case.rate": REPORTER_ONLY,
}

ANONYMOUS_ACTIONS = frozenset({"case.report", "region.view"})
SCOPE_FREE = frozenset({"case.report", "region.view", "live.join"})
# Relations that tie a citizen to a case: only their own.
_OWN_CASE_ACTIONS = frozenset({"case.view", "case.view_private", "case.rate"})
# Actions only the receiver of a dispatch may take.
_RECEIVER_ACTIONS = frozenset(p for p, r in STEP_RELATIONS.items() if r == RECEIVER_ONLY)
# A worker a case is dispatched to may see and work it even outside their own scope (the
# nearest on-duty worker of the street may come from a neighbouring community).
_ASSIGNEE_ACTIONS = _RECEIVER_ACTIONS | {"case.view"}
# Rooms anyone on the command side (not citizens, not department staff) may join.
_COMMAND_ROLES = frozenset({"inspector", "operator", "duty_chief", "dispatcher", "admin"})


def scope_filter(user: User) -> str | None:
    """The region code prefix a user's queries are limited to; None for the whole city."""
    return user.region.code if user.region is not None else None


def user_city_id(user: User) -> int | None:
    """The city a user belongs to (None: every city, for a platform-wide administrator)."""
    if user.city_id is not None:
        return user.city_id
    return user.region.city_id if user.region is not None else None


def in_scope(user: User, region_code: str | None, city_id: int | None = None) -> bool:
    """True when a target at ``region_code`` (None: city-wide) in ``city_id`` is in the scope."""
    return scope_test(user)(region_code, city_id)


def scope_test(user: User) -> Callable[[str | None, int | None], bool]:
    """:func:`in_scope` for one user, whose city and region are read once (a list's rows)."""
    own_city, prefix = user_city_id(user), scope_filter(user)

    def test(region_code: str | None, city_id: int | None = None) -> bool:
        if city_id is not None and own_city is not None and city_id != own_city:
            return False
        if prefix is None:
            return True
        return region_code is not None and region_code.startswith(prefix)
    return test


def can(user: User | None, action: str, *, region_code: str | None = None,
        city_id: int | None = None, **ctx) -> bool:
    """True when ``user`` may take ``action`` on a target at ``region_code``, given ``ctx``."""
    return _decide(user, action, region_code, city_id, ctx) is None


def case_sql(user: User, action: str, params: dict) -> str:
    """:func:`can` for ``action`` on every case row ``c`` at once: an SQL condition (role, scope
    with its assignee and reporter exceptions, relation) whose values are bound in ``params``.
    The task lists select with it; a test holds it equal to :func:`can` case by case."""
    if not user.is_active or action not in ROLE_ACTIONS.get(user.role, ()):
        return "FALSE"
    params["me"] = user.id
    scope = []
    if user_city_id(user) is not None:
        scope.append("c.city_id = :my_city")
        params["my_city"] = user_city_id(user)
    if scope_filter(user) is not None:
        scope.append("c.grid_code LIKE :my_prefix")
        params["my_prefix"] = scope_filter(user) + "%"
    where = " AND ".join(scope) or "TRUE"
    if action not in SCOPE_FREE:
        escapes = ["c.worker_id = :me"] if action in _ASSIGNEE_ACTIONS else []
        escapes += ["c.reporter_id = :me"] if action == "case.view" else []
        where = f"(({where}) OR {' OR '.join(escapes)})" if escapes else where
    relation = _RELATIONS.get(action)
    if relation is None:
        return where
    if relation is _not_own_handling:
        return f"{where} AND c.handler_id IS DISTINCT FROM :me"
    receiver = "c.worker_id = :me"
    if user.role == "department" and user.department_id is not None:
        receiver = "(c.worker_id = :me OR c.department_id = :my_department)"
        params["my_department"] = user.department_id
    if relation is _receiver:
        return where if user.role == "admin" else f"{where} AND {receiver}"
    if relation is _own_rating:
        return where if user.role == "admin" else f"{where} AND c.reporter_id = :me"
    if relation is _own_case:
        return {"citizen": f"{where} AND c.reporter_id = :me",
                "department": f"{where} AND {receiver}"}.get(user.role, where)
    raise ValueError(f"{action} has no relation on a case row")


def authorize(user: User | None, action: str, *, region_code: str | None = None,
              city_id: int | None = None, **ctx) -> None:
    """Raise Forbidden (403, ``forbidden``) naming the action unless :func:`can` allows it."""
    reason = _decide(user, action, region_code, city_id, ctx)
    if reason is None:
        return
    if user is None:
        from gridmgr.people.tokens import TokenError

        raise TokenError("token_missing", Sentence("Sign in to %(phrase)s.",
                                                   phrase=ACTIONS[action]))
    who = "An" if user.role[0] in "aeiou" else "A"
    # "A duty chief", "An inspector": whole phrases, so that each can be translated.
    words = {"who": f"{who} {user.role.replace('_', ' ')}", "phrase": ACTIONS[action]}
    if reason == "scope" and scope_filter(user):
        message = Sentence("%(who)s may not %(phrase)s outside region %(region)s.",
                           region=scope_filter(user), **words)
    elif reason == "scope":
        message = Sentence("%(who)s may not %(phrase)s for every city." if ctx.get("every_city")
                           else "%(who)s may not %(phrase)s in that city.", **words)
    elif reason == "role":
        message = Sentence("%(who)s may not %(phrase)s.", **words)
    else:
        message = Sentence("You may not %(phrase)s: %(reason)s.", phrase=words["phrase"],
                           reason=reason)
    raise Forbidden(message, action=action, role=user.role)


def _decide(user: User | None, action: str, region_code: str | None, city_id: int | None,
            ctx: dict) -> str | None:
    """None when allowed, else the reason: ``role``, ``scope`` or a sentence about the relation."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; known actions are in policy.ACTIONS")
    if user is None:
        return None if action in ANONYMOUS_ACTIONS else "role"
    if not user.is_active:
        return "role"
    if action not in ROLE_ACTIONS.get(user.role, ()):
        return "role"
    if action not in SCOPE_FREE and not in_scope(user, region_code, city_id) \
            and not (action in _ASSIGNEE_ACTIONS and _is_assignee(user, ctx)) \
            and not (action == "case.view" and _is_reporter(user, ctx)):
        return "scope"
    relation = _RELATIONS.get(action)
    return relation(user, ctx) if relation else None


def _own_case(user: User, ctx: dict) -> str | None:
    if user.role == "citizen" and ctx.get("reporter_id") != user.id:
        return "it is not your report"
    if user.role == "department" and not _is_receiver(user, ctx):
        return "the case is not dispatched to your department"
    return None


def _receiver(user: User, ctx: dict) -> str | None:
    if user.role == "admin" or _is_receiver(user, ctx):
        return None
    return "the case is not dispatched to you or your department"


def _is_assignee(user: User, ctx: dict) -> bool:
    return ctx.get("assignee_id") is not None and ctx["assignee_id"] == user.id


def _is_reporter(user: User, ctx: dict) -> bool:
    # Whoever reported a case may follow it, wherever it is: an inspector may report a
    # problem just outside their own grids (gridmgr.cases.views shows them the reporter's
    # view of it).
    return ctx.get("reporter_id") is not None and ctx["reporter_id"] == user.id


def _is_receiver(user: User, ctx: dict) -> bool:
    if _is_assignee(user, ctx):
        return True
    return (user.role == "department" and user.department_id is not None
            and ctx.get("department_id") == user.department_id)


def _not_own_handling(user: User, ctx: dict) -> str | None:
    if ctx.get("handler_id") is not None and ctx["handler_id"] == user.id:
        return "the check must be made by someone other than the handler"
    return None


def _own_duty(user: User, ctx: dict) -> str | None:
    if user.role in ("duty_chief", "admin"):
        return None
    return _own_position(user, ctx)


def _own_position(user: User, ctx: dict) -> str | None:
    worker = ctx.get("worker_id")
    if worker is not None and worker != user.id:
        return "only the worker may do this for themselves"
    return None


def _own_rating(user: User, ctx: dict) -> str | None:
    if user.role != "admin" and ctx.get("reporter_id") != user.id:
        return "only the reporter may rate a case"
    return None


def _live_room(user: User, ctx: dict) -> str | None:
    refused = "your role and scope do not cover this channel"
    kind, _, value = str(ctx.get("room", "")).partition(":")
    if kind == "worker":
        return None if value == str(user.id) else refused
    if user.role == "citizen":
        return refused
    # The city of a region or department room (gridmgr.live.rooms): another city's is closed.
    room_city, own_city = ctx.get("room_city_id"), user_city_id(user)
    if room_city is not None and own_city is not None and room_city != own_city:
        return refused
    if kind == "department":
        if user.role == "department":
            return None if value == str(user.department_id) else refused
        return None if (user.role in _COMMAND_ROLES - {"inspector"}
                        and scope_filter(user) is None) else refused
    if user.role not in _COMMAND_ROLES:
        return refused
    if kind == "city":
        own_city = user_city_id(user)
        same_city = value.isdigit() and (own_city is None or int(value) == own_city)
        return None if same_city and scope_filter(user) is None else refused
    if kind == "region":
        return None if value.isdigit() and in_scope(user, value, ctx.get("city_id")) else refused
    return refused


def _not_beyond_own_city(user: User, ctx: dict) -> str | None:
    # A target of no city acts in every city; a city's administrator would otherwise grant
    # (or take) more than their own scope.
    if ctx.get("every_city") and user_city_id(user) is not None:
        return "scope"
    return None


_RELATIONS: dict[str, Callable[[User, dict], str | None]] = {
    "case.view": _own_case,
    "case.view_private": _own_case,
    # The relation each step asks of its actor.
    **{permission: {RECEIVER_ONLY: _receiver, NOT_HANDLER: _not_own_handling,
                    REPORTER_ONLY: _own_rating}[relation]
       for permission, relation in STEP_RELATIONS.items()},
    "duty.set": _own_duty,
    "position.send": _own_position,
    "live.join": _live_room,
    "admin.users": _not_beyond_own_city,
    "admin.departments": _not_beyond_own_city,
}
