"""The case workflow as one table: every action, where it may start, where it leads, who may take
it, what it needs, which stage clocks it starts, stops, pauses or moves, the counters it adds to
and the live event it sends.

Everything that knows a step reads this table: the step endpoints and their OpenAPI text
(``mobile_api.cases``), the policy's relations (``gridmgr.people.policy``), the workflow's checks
and its one writer (``gridmgr.cases.workflow``), dispatch by rules and escalation
(``gridmgr.dispatch.assign``), the task lists and each case's ``available_actions``
(``gridmgr.cases.queries``), the history import's replay (``gridmgr.legacy.importing``) and the
reference page ``docs/workflow.md`` (``gridmgr workflow doc``).

The module is data only. Who may take a step beyond its permission (a relation of the actor to
the case) is the policy's (``gridmgr.people.policy.STEP_RELATIONS``): the table reads it there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gridmgr.people.policy import RELATIONS, STEP_RELATIONS

# A target that is not a state: the case keeps its state, or goes back to the state it was
# shelved from.
SAME = "(same)"
PREVIOUS = "(state before shelving)"

# What a step needs from the request; each is refused with its own code when missing.
NOTE = "note"                # a note saying why (422 note_required)
ON_SITE = "on_site"          # the actor's lon/lat, near the case (422 location_required, too_far)
PHOTO = "photo"              # at least one photo (422 photo_required)
RECEIVER = "receiver"        # a department or worker, or a responsible department (422
                             # receiver_required)
EXTENSION = "extension"      # amount and unit, or a new deadline (422 bad_extension)
RATING = "rating"            # a rating from 1 to 5 (422 bad_rating)
INTO = "into"                # the open case that carries the report on (422 into_required)
NEEDS = {
    NOTE: "a note saying why",
    ON_SITE: "the actor on site: lon/lat within the handling radius",
    PHOTO: "a photo",
    RECEIVER: "a department or worker (or one responsible for the category here)",
    EXTENSION: "amount and unit, or a new deadline",
    RATING: "a rating from 1 to 5",
    INTO: "the open case that carries the report on (into: its id)",
}

# What the case must be, beyond its state: (code, condition, refusal); the refusal is a 409 with
# that code. The condition's names are case fields, so lists test it in Python for every row.
GUARDS = {
    "verification_required": "a citizen's report is verified on site before it is filed",
    "not_a_citizen_report": "only a citizen's report is verified on site; an inspector's own "
                            "report is filed as it is",
    "not_your_report": "only the inspector who reported a problem handles it on the spot "
                       "(or someone who may close cases)",
    "already_rated": "a case is rated once",
    "no_clock": "only a running clock can be extended",
    "request_pending": "one request at a time waits for a duty chief",
}
# Each guard as an SQL condition on a case row ``c`` (``:me`` the actor, ``{may_close}`` the
# condition that the actor may close the case), for the task lists; :func:`case_guard` is the
# same rule in Python.
GUARD_SQL = {
    # In file's start states the same rule, written as the predicate of the partial index
    # ix_cases_to_file so that the list of cases to file reads that index.
    "verification_required": "(c.state = 'verified' OR (c.state = 'reported' "
                             "AND c.source = 'inspector'))",
    "not_a_citizen_report": "c.source = 'citizen'",
    "not_your_report": "(c.reporter_id = :me OR {may_close})",
    "already_rated": "c.rating IS NULL",
    "no_clock": "c.deadline IS NOT NULL",
    "request_pending": "c.pending_request IS NULL",
}

# Whether a case in a start state waits for an action, so that it is on the task list of whoever
# may take it: always, only while the receiver's request for it waits (listed as "approve"), or
# never (a step one may take, such as cancel or rework, but that nobody owes).
AWAITED = "awaited"
ON_REQUEST = "on_request"


@dataclass(frozen=True)
class Clocks:
    """Stage clocks (names of :data:`STAGES`) a step starts, stops, pauses, resumes or moves."""

    start: tuple[str, ...] = ()
    stop: tuple[str, ...] = ()
    pause: tuple[str, ...] = ()
    resume: tuple[str, ...] = ()
    move: tuple[str, ...] = ()

    def phrases(self) -> list[str]:
        return [f"{verb} {', '.join(stages)}" for verb, stages in (
            ("starts", self.start), ("stops", self.stop), ("pauses", self.pause),
            ("resumes", self.resume), ("moves", self.move)) if stages]


@dataclass(frozen=True)
class Otherwise:
    """A step whose request says "no" leads elsewhere: ``flag`` false → ``target``, recorded as
    ``records`` (the same action, or another one of the table)."""

    flag: str
    target: str
    records: str
    meaning: str


@dataclass(frozen=True)
class Action:
    """One row of the workflow table."""

    name: str
    summary: str
    permission: str | None  # None: only the system takes it
    sources: tuple[str, ...]
    target: str
    needs: tuple[str, ...] = ()
    guards: tuple[str, ...] = ()
    clocks: Clocks = field(default_factory=Clocks)
    counters: tuple[str, ...] = ()
    event: str = "case.updated"
    otherwise: Otherwise | None = None
    request: str | None = None  # the action a receiver asks for (``*_requested`` rows)
    requested_as: str | None = None  # the request row recorded when the actor may only ask
    automatic: bool = False  # taken by the system (no endpoint)
    task: str | None = None  # AWAITED, ON_REQUEST or None: see :data:`AWAITED`

    @property
    def relation(self) -> str | None:
        """The relation to the case the policy asks of the actor (None: none)."""
        return STEP_RELATIONS.get(self.permission) if self.permission else None

    @property
    def endpoint(self) -> str | None:
        """The step endpoint that takes this action (``/cases/{id}/<endpoint>``)."""
        if self.automatic:
            return None
        return self.request or self.name

    def leads_to(self, state: str, shelved_from: str | None = None) -> str:
        """The state a case in ``state`` reaches by this action."""
        if self.target == SAME:
            return state
        if self.target == PREVIOUS:
            return shelved_from or state
        return self.target


STAGES = ("verify", "file", "dispatch", "accept", "handle", "check", "close")
_WORK = ("dispatched", "accepted")

TABLE: tuple[Action, ...] = (
    Action("report", "Anyone reports a problem; a new case is opened (or the report joins an "
           "open one nearby).", "case.report", (), "reported",
           clocks=Clocks(start=("verify", "file")), event="case.created", automatic=True),
    Action("verify", "An inspector verifies a citizen's report on site (valid=false cancels "
           "it).", "case.verify", ("reported",), "verified", needs=(ON_SITE,),
           guards=("not_a_citizen_report",), task=AWAITED,
           clocks=Clocks(start=("file",), stop=("verify",)),
           otherwise=Otherwise("valid", "cancelled", "verify", "a false report is cancelled")),
    Action("file", "An operator or duty chief files a report as a case (立案).", "case.file",
           ("reported", "verified"), "filed", guards=("verification_required",), task=AWAITED,
           clocks=Clocks(start=("dispatch",), stop=("file",))),
    Action("cancel", "An operator or duty chief cancels a report (作废), with a note.",
           "case.cancel", ("reported", "verified", "filed"), "cancelled", needs=(NOTE,),
           clocks=Clocks(stop=("verify", "file", "dispatch"))),
    Action("merge", "An operator or duty chief merges a report into an open case of the same "
           "problem (合并): its reports, their photos and its followers move to that case; "
           "this one ends cancelled, its reporters told which case carries their report.",
           "case.cancel", ("reported", "verified", "filed"), "cancelled", needs=(INTO,),
           clocks=Clocks(stop=("verify", "file", "dispatch"))),
    Action("dispatch", "Dispatch to a department and/or worker; the clock starts.",
           "case.dispatch", ("filed",), "dispatched", needs=(RECEIVER,), task=AWAITED,
           clocks=Clocks(start=("accept", "handle"), stop=("dispatch",)),
           event="case.dispatched"),
    Action("escalate", "Nobody accepted the dispatch in time: the system escalates it (督办) "
           "community → street → district and hands it to another on-duty worker.", None,
           ("dispatched",), SAME, clocks=Clocks(start=("accept",)), event="case.escalated",
           automatic=True),
    Action("accept", "The receiver acknowledges the dispatch (签收).", "case.accept",
           ("dispatched",), "accepted", clocks=Clocks(stop=("accept",)),
           task=AWAITED),
    Action("return", "The receiver returns a mis-dispatched case (回退); back to filed.",
           "case.return", _WORK, "filed", needs=(NOTE,),
           clocks=Clocks(stop=("accept", "handle")), counters=("return_count",)),
    Action("handle", "The receiver feeds back with after-photos taken near the case.",
           "case.handle", ("accepted",), "handled", needs=(ON_SITE, PHOTO),
           clocks=Clocks(start=("check",), stop=("handle",)),
           task=AWAITED),
    Action("check", "An inspector other than the handler checks on site (passed=false: "
           "rework).", "case.check", ("handled",), "checked", needs=(ON_SITE,),
           clocks=Clocks(stop=("check",)), task=AWAITED,
           otherwise=Otherwise("passed", "dispatched", "rework",
                               "a failed check sends the case back as a rework")),
    Action("close", "A duty chief closes a checked case (结案).", "case.close", ("checked",),
           "closed", clocks=Clocks(stop=("close",)), task=AWAITED),
    Action("rework", "A duty chief sends a case back to the same department (返工).",
           "case.rework", ("handled", "checked"), "dispatched", needs=(NOTE,),
           clocks=Clocks(start=("handle",), stop=("check", "close")), counters=("rework_count",)),
    Action("extend", "Extension (延期): a duty chief approves; the receiver's call is a "
           "request.", "case.extend", _WORK, SAME, needs=(EXTENSION,), guards=("no_clock",),
           clocks=Clocks(move=("handle",)), counters=("extension_count",),
           requested_as="extend_requested", task=ON_REQUEST),
    Action("extend_requested", "The receiver asks a duty chief for more time.", "case.request",
           _WORK, SAME, needs=(EXTENSION,), guards=("no_clock", "request_pending"),
           request="extend"),
    Action("shelve", "Shelving (挂账) stops the clock: a duty chief approves; the receiver "
           "requests.", "case.shelve", _WORK, "shelved", needs=(NOTE,),
           clocks=Clocks(pause=("handle",)), requested_as="shelve_requested", task=ON_REQUEST),
    Action("shelve_requested", "The receiver asks a duty chief to shelve the case.",
           "case.request", _WORK, SAME, needs=(NOTE,), guards=("request_pending",),
           request="shelve"),
    Action("resume", "A duty chief resumes a shelved case; the clock runs again.",
           "case.shelve", ("shelved",), PREVIOUS, clocks=Clocks(resume=("handle",))),
    Action("self_handle", "An inspector handles their own small report on the spot and closes "
           "it.", "case.self_handle", ("reported", "verified"), "closed", needs=(ON_SITE, PHOTO),
           guards=("not_your_report",), clocks=Clocks(stop=("verify", "file"))),
    Action("rate", "The reporter rates a closed case (1–5).", "case.rate", ("closed",), SAME,
           needs=(RATING,), guards=("already_rated",), task=AWAITED),
)

ACTIONS: dict[str, Action] = {action.name: action for action in TABLE}
# The step endpoints, in table order: one per action a person takes (a request shares the
# endpoint of what it asks for).
ENDPOINTS: tuple[str, ...] = tuple(dict.fromkeys(
    a.endpoint for a in TABLE if a.endpoint is not None))
# Every action a history row may name.
RECORDED: tuple[str, ...] = tuple(ACTIONS)
# The states of dispatched work: the receiver holds the case and its handling clock runs (it
# may be extended or shelved from them); a worker's open workload.
WORK_STATES: tuple[str, ...] = _WORK


def states_sql(states: tuple[str, ...]) -> str:
    """States as an SQL list, ``('dispatched', 'accepted')``, for ``state IN …``."""
    return "(" + ", ".join(f"'{state}'" for state in states) + ")"


def case_guard(code: str, case, actor_id: int | None, may_close: bool) -> bool:
    """True when the case (any object with the case's fields) passes the guard ``code``."""
    if code == "verification_required":
        return not (case.state == "reported" and case.source == "citizen")
    if code == "not_a_citizen_report":
        return case.source == "citizen"
    if code == "not_your_report":
        return case.reporter_id == actor_id or may_close
    if code == "already_rated":
        return case.rating is None
    if code == "no_clock":
        return case.deadline is not None
    if code == "request_pending":
        return not case.pending_request
    raise ValueError(f"unknown guard {code!r}")


def endpoint_doc(endpoint: str) -> str:
    """The OpenAPI text of a step endpoint: the action's summary, then its rows of the table
    (the approval and, where there is one, the receiver's request)."""
    rows = [a for a in TABLE if a.endpoint == endpoint]
    lines = [rows[0].summary, ""]
    for row in rows:
        lines.append(describe(row))
    return "\n".join(lines)


def describe(action: Action) -> str:
    """One sentence per fact of a row of the table, for the API's text and docs/workflow.md."""
    target = {SAME: "keeps its state", PREVIOUS: "goes back to the state it was shelved from"
              }.get(action.target, f"becomes {action.target}")
    parts = [f"`{action.name}`: from {' or '.join(action.sources) or 'nothing'}, the case "
             f"{target}"]
    if action.otherwise:
        parts.append(f"with {action.otherwise.flag}=false it becomes "
                     f"{action.otherwise.target} ({action.otherwise.meaning})")
    parts.append(f"permission {action.permission}" if action.permission
                 else "taken by the system")
    if action.relation:
        parts.append(f"only {RELATIONS[action.relation]}")
    if action.needs:
        parts.append("needs " + ", ".join(NEEDS[n] for n in action.needs))
    if action.guards:
        parts.append("refused (409) " + "; ".join(f"{g}: {GUARDS[g]}" for g in action.guards))
    parts += action.clocks.phrases()
    if action.task:
        parts.append("on the task list of whoever may take it" + (
            " while the receiver's request for it waits (as approve)"
            if action.task == ON_REQUEST else ""))
    if action.counters:
        parts.append("adds one to " + ", ".join(action.counters))
    parts.append(f"event {action.event}")
    return "; ".join(parts) + "."
