"""Importing past cases with their full timelines from a CSV or JSON-lines file.

One row per step: ``reference, category, lon, lat, step, time, actor_role, actor, department,
note`` (optional: ``coord_sys``, ``channel``, ``deadline``, ``passed``, ``rating``). Each case
is replayed step by step with the workflow's own rules (the step must be allowed from the state the
previous one left, the role must be allowed to take it, notes where the API wants a reason) and
written as the workflow writes it: a ``cases`` row in its final state, one ``case_history`` row
per step at the file's time, and the first report. Deadlines are computed from the category's
limits and the city's working calendar at the time of each step.

All or nothing: every row is checked first and every problem is reported (row number,
reference, problem code, sentence); only a clean file is written, in one transaction.
A reference imported before is extended: the steps after its last imported one are replayed
from the case's stored state (its earlier steps must be the ones imported), or skipped when
there are none, so importing the same file twice changes nothing and a file that grows month
by month adds only what is new.
Actors that are not gridmgr users are kept by name in the history details (no users are made).
No live events are published: these cases are history, not news.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError

from gridmgr.calendar.deadlines import REPORTED_STAGE, Calendar, calendar_for_city, start_stages
from gridmgr.cases.events import history_parameters, history_values
from gridmgr.cases.intake import invalid_text_field
from gridmgr.cases.models import CHANNELS, Case, CaseHistory, Report
from gridmgr.cases.steps import ACTIONS as TABLE_ACTIONS
from gridmgr.cases.steps import GUARDS, NOTE, case_guard
from gridmgr.cases.workflow import StepInput, outcome, plan_step, write_step
from gridmgr.categories.models import Category
from gridmgr.errors import Conflict, DomainError, InvalidInput
from gridmgr.extensions import db
from gridmgr.geo.coords import COORD_SYSTEMS, to_wgs84
from gridmgr.grids.locating import OutsideCity, locate
from gridmgr.people.models import ROLES, Department, User
from gridmgr.people.policy import ROLE_ACTIONS
from gridmgr.rowfiles import read_rows

COLUMNS = ("reference", "category", "lon", "lat", "step", "time", "actor_role", "actor",
           "department", "note")
OPTIONAL_COLUMNS = ("coord_sys", "channel", "deadline", "passed", "rating")
PASSED = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
# Steps a file may hold: "reported" opens a case, the rest are the workflow's actions.
IMPORT_STEPS = ("reported", "verify", "file", "dispatch", "accept", "return", "handle", "check",
                "close", "rework", "extend", "shelve", "resume", "cancel", "self_handle", "rate")
REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-/]{0,19}$")
# gridmgr numbers its own cases yyyymmdd + 6 digits; an old reference of that shape dated
# today or later could meet a number gridmgr hands out.
OWN_CODE = re.compile(r"^(\d{8})\d{6}$")
# The table's guards a file's own steps can break (the others concern requests and ratings,
# which a file does not hold, or who the reporter is, which an old system may not know).
REPLAYED_GUARDS = ("verification_required", "no_clock", "already_rated")
MAX_PROBLEMS = 1000
WRITE_BATCH = 2000  # cases per round of INSERTs
# The columns a step may change: what extending an imported case reads and writes back.
STEP_COLUMNS = ("state", "category_id", "deadlines", "department_id", "worker_id", "handler_id",
                "verified_by_id", "dispatched_at", "clock_unit", "deadline", "yellow_at",
                "paused_at", "paused_seconds", "shelved_from", "accepted_at", "handled_at",
                "closed_at", "extension_count", "rework_count", "return_count", "rating",
                "rating_note", "version", "updated_at")


class InvalidHistory(DomainError):
    """A history file with problems; ``details["problems"]`` names every offending row."""

    status = 422

    def __init__(self, path: str, problems: list[dict]):
        kinds: dict[str, int] = defaultdict(int)
        for p in problems:
            kinds[p["problem"]] += 1
        summary = ", ".join(f"{n} × {k.replace('_', ' ')}" for k, n in sorted(kinds.items()))
        super().__init__("invalid_history",
                         f"{Path(path).name} was not imported: {summary}. Nothing was changed.",
                         problems=problems[:MAX_PROBLEMS])


@dataclass
class ImportResult:
    """What an import loaded: new cases (``cases``, ``steps``, ``references``), imported cases
    given their later steps (``extended``: reference -> steps added) and imported cases with
    nothing new (``skipped``)."""

    cases: int = 0
    steps: int = 0
    references: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    extended: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"cases": self.cases, "steps": self.steps, "references": self.references,
                "extended": self.extended, "skipped": self.skipped}


@dataclass
class _Row:
    number: int
    reference: str
    step: str
    at: datetime | None
    category: str
    lon: float | None
    lat: float | None
    role: str | None
    actor: str
    department: str
    note: str | None
    channel: str | None
    deadline: datetime | None
    passed: bool = True
    rating: int | None = None


class _Problems(list):
    def add(self, row: _Row | int, problem: str, message: str) -> None:
        number = row if isinstance(row, int) else row.number
        reference = None if isinstance(row, int) else row.reference
        self.append({"row": number, "reference": reference, "problem": problem,
                     "message": f"row {number}: {message}"})


def import_history(path: str | Path, now: datetime | None = None,
                   dry_run: bool = False) -> ImportResult:
    """Load the past cases in ``path`` (.csv or .jsonl) with their timelines, all or nothing;
    422 ``invalid_history`` naming every bad row. A reference imported before gets the steps
    that follow its imported ones, or is skipped when there are none. ``dry_run`` checks
    everything and writes nothing."""
    path = Path(path)
    now = now or datetime.now(UTC)
    problems = _Problems()
    rows, bad = _parse(path, problems, now)
    cases: dict[str, list[_Row]] = defaultdict(list)
    for row in rows:
        cases[row.reference].append(row)
    stored = _stored_cases(_already_imported(list(cases), cases, problems))
    context = _Context.load(rows)
    planned, extensions, skipped = [], [], []
    for reference, steps in cases.items():
        if reference in bad:
            continue
        steps.sort(key=lambda r: (r.at, r.number))
        if reference in stored:
            extension = _extend(stored[reference], steps, context, problems)
            if extension is None:
                skipped.append(reference)
            else:
                extensions.append(extension)
            continue
        case = _replay(reference, steps, context, problems)
        if case is not None:
            planned.append(case)
    if problems:
        problems.sort(key=lambda p: p["row"])
        raise InvalidHistory(str(path), problems)
    result = ImportResult(
        len(planned), sum(len(c.history) for c in planned), [c.reference for c in planned],
        sorted(skipped),
        {c.reference: len(c.history) for c in sorted(extensions, key=lambda c: c.reference)})
    if dry_run:
        db.session.rollback()
        return result
    try:
        for first in range(0, len(planned), WRITE_BATCH):
            _write(planned[first:first + WRITE_BATCH])
        _write_extensions(extensions)
    except IntegrityError as exc:  # the same references loaded meanwhile by another import
        db.session.rollback()
        raise Conflict("Some of these references were imported meanwhile by another run; "
                       "nothing was changed: import the file again to load the rest.",
                       code="conflict") from exc
    db.session.commit()
    return result


# -- reading ---------------------------------------------------------------------------------

def _parse(path: Path, problems: _Problems, now: datetime) -> tuple[list[_Row], set[str]]:
    """The good rows, and the references of cases with a bad row (not replayed)."""
    records = _records(path)
    if not records:
        raise InvalidInput(f"{path.name} holds no rows.", code="empty_file")
    rows, bad = [], set()
    for number, record in records:
        row = _row(number, record, problems, now)
        if row is None:
            bad.add(_text(record, "reference"))
        else:
            rows.append(row)
    return rows, bad


def _records(path: Path) -> list[tuple[int, dict]]:
    """(line number, fields) of every row; a missing column or a malformed line is refused."""
    rows = read_rows(path, "history")
    missing = [c for c in COLUMNS if c not in rows.columns]
    if path.suffix.lower() == ".csv" and missing:
        raise InvalidInput(f"{path.name} lacks the column(s) {', '.join(missing)}; the "
                           f"header is {', '.join(COLUMNS)}.", code="missing_columns")
    return list(rows.records())


def _text(record: dict, key: str) -> str:
    value = record.get(key)
    return "" if value is None else str(value).strip()


def _row(number: int, record: dict, problems: _Problems, now: datetime) -> _Row | None:
    before = len(problems)
    reference = _text(record, "reference")
    row = _Row(number, reference, _text(record, "step"), None, _text(record, "category"),
               None, None, _text(record, "actor_role") or None, _text(record, "actor"),
               _text(record, "department"), _text(record, "note") or None,
               _text(record, "channel") or None, None)
    passed = _text(record, "passed").lower()
    if passed not in PASSED and passed != "":
        problems.add(row, "bad_passed", f"passed {passed!r:.20} is not true/false, yes/no or "
                     "1/0.")
    elif passed and not PASSED[passed] and row.step != "check":
        problems.add(row, "passed_not_check", f"only a check can fail, not a {row.step:.20}.")
    else:
        row.passed = PASSED.get(passed, True)
    rating = _text(record, "rating")
    if rating and not (rating.isdigit() and 1 <= int(rating) <= 5):
        problems.add(row, "bad_rating", f"rating {rating!r:.20} is not a whole number from 1 "
                     "to 5.")
    elif rating and row.step != "rate":
        problems.add(row, "rating_not_rate", f"only a rate step has a rating, not a "
                     f"{row.step:.20}.")
    elif rating:
        row.rating = int(rating)
    # The text every intake refuses (NUL, other control characters): a file is no exception.
    bad_text = invalid_text_field({str(key): _text(record, key) for key in record})
    if bad_text is not None:
        problems.add(row, "invalid_text", f"the {bad_text} column holds a control character "
                     "that text may not contain.")
    if not REFERENCE.match(reference):
        problems.add(row, "bad_reference", f"the case reference {reference!r:.40} must be 1 to "
                     "20 letters, digits or _ . - /.")
    elif (own := OWN_CODE.match(reference)) and own.group(1) >= now.strftime("%Y%m%d"):
        problems.add(row, "reference_clash", f"the reference {reference} looks like a gridmgr "
                     "case number of today or later; prefix it.")
    if row.step not in IMPORT_STEPS:
        problems.add(row, "unknown_step", f"unknown step {row.step!r:.40}; steps are "
                     f"{', '.join(IMPORT_STEPS)}.")
    row.at = _time(row, _text(record, "time"), "time", problems, now, required=True)
    if _text(record, "deadline"):
        row.deadline = _time(row, _text(record, "deadline"), "deadline", problems, None)
    coord_sys = _text(record, "coord_sys") or "wgs84"
    if coord_sys not in COORD_SYSTEMS:
        problems.add(row, "bad_coord_sys", f"coord_sys {coord_sys!r:.20} is not one of "
                     f"{', '.join(COORD_SYSTEMS)}.")
    lon, lat = _text(record, "lon"), _text(record, "lat")
    if lon or lat:
        try:
            x, y = float(lon), float(lat)
        except ValueError:
            x = y = math.nan
        if not (-180 <= x <= 180 and -90 <= y <= 90):
            problems.add(row, "bad_location", f"lon {lon!r:.30} and lat {lat!r:.30} must be "
                         "numbers in [-180, 180] and [-90, 90].")
        elif coord_sys in COORD_SYSTEMS:
            row.lon, row.lat = to_wgs84(x, y, coord_sys)
    if row.step == "reported":
        if row.lon is None and not (lon or lat):
            problems.add(row, "location_required", "a reported step needs lon and lat.")
        if not row.category:
            problems.add(row, "category_required", "a reported step needs a category code.")
    if row.role is not None and row.role not in ROLES:
        problems.add(row, "unknown_role", f"actor_role {row.role!r:.30} is not one of "
                     f"{', '.join(ROLES)}.")
    if row.channel is not None and row.channel not in CHANNELS:
        problems.add(row, "bad_channel", f"channel {row.channel!r:.20} is not one of "
                     f"{', '.join(CHANNELS)}.")
    return row if len(problems) == before else None


def _time(row: _Row, value: str, column: str, problems: _Problems, now: datetime | None,
          required: bool = False) -> datetime | None:
    if not value:
        if required:
            problems.add(row, "time_required", f"the {column} is missing.")
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        problems.add(row, "bad_time", f"{column} {value!r:.40} is not an ISO 8601 time.")
        return None
    if moment.tzinfo is None:
        problems.add(row, "time_without_offset", f"{column} {value!r:.40} has no UTC offset "
                     "(write e.g. 2025-03-01T09:30:00+08:00).")
        return None
    moment = moment.astimezone(UTC)
    if now is not None and moment > now:
        problems.add(row, "time_in_future", f"{column} {value} is in the future.")
        return None
    return moment


def _already_imported(references: list[str], cases: dict[str, list[_Row]],
                      problems: _Problems) -> list[int]:
    """The ids of the cases imported before under these references; a reference that is
    another case's number is a problem."""
    found = db.session.execute(text("""
        SELECT c.id, c.code, EXISTS (SELECT 1 FROM case_history h WHERE h.case_id = c.id
                                     AND h.action = 'report' AND h.details ? 'imported')
        FROM cases c WHERE c.code = ANY(:codes)"""), {"codes": references}).all()
    ids = []
    for case_id, code, imported in found:
        if imported:
            ids.append(case_id)
        else:
            problems.add(cases[code][0], "reference_taken", f"{code} is already the number of "
                         "a case that was not imported.")
    return ids


@dataclass
class _Stored:
    """An imported case as the database holds it: its columns and its history in order."""

    case_id: int
    values: dict
    reported_category: str | None
    history: list = field(default_factory=list)


def _stored_cases(ids: list[int]) -> dict[str, _Stored]:
    """The imported cases with these ids by reference, times in UTC as a replay makes them."""
    if not ids:
        return {}
    columns = ", ".join(f"c.{name}" for name in STEP_COLUMNS)
    cases: dict[int, _Stored] = {}
    for row in db.session.execute(text(f"""
        SELECT c.id, c.code, c.city_id, c.region_id, c.grid_code, c.source, {columns},
               (SELECT k.code FROM reports r JOIN categories k ON k.id = r.category_id
                WHERE r.case_id = c.id AND r.client_id = 'import:' || c.code
                LIMIT 1) AS reported_category
        FROM cases c WHERE c.id = ANY(:ids)"""), {"ids": ids}).mappings():
        values = {key: value.astimezone(UTC) if isinstance(value, datetime) else value
                  for key, value in row.items() if key not in ("id", "reported_category")}
        cases[row["id"]] = _Stored(row["id"], values, row["reported_category"])
    for step in db.session.execute(text("""
        SELECT h.case_id, h.action, h.at, h.actor_role, u.username, h.note, h.details,
               ST_X(h.location) AS lon, ST_Y(h.location) AS lat
        FROM case_history h LEFT JOIN users u ON u.id = h.actor_id
        WHERE h.case_id = ANY(:ids) ORDER BY h.case_id, h.at, h.id"""), {"ids": ids}):
        cases[step.case_id].history.append(step)
    return {case.values["code"]: case for case in cases.values()}


# -- replaying a case ------------------------------------------------------------------------

@dataclass
class _Context:
    categories: dict[str, Category]
    departments: dict[str, Department]
    users: dict[str, User]
    calendars: dict[int, Calendar] = field(default_factory=dict)
    departments_at: dict[tuple, Department | None] = field(default_factory=dict)

    @classmethod
    def load(cls, rows: list[_Row]) -> _Context:
        codes = {r.category for r in rows if r.category}
        categories = {c.code: c for c in db.session.scalars(select(Category).where(
            Category.code.in_(codes), Category.active.is_(True)))}
        departments = {}
        for department in db.session.scalars(select(Department)):
            departments[department.name] = department
            departments[str(department.id)] = department
        names = {r.actor for r in rows if r.actor}
        users = {u.username: u for u in db.session.scalars(select(User).where(
            User.username.in_(names)))}
        return cls(categories, departments, users)

    def responsible(self, category: Category, grid_code: str, city_id: int) -> Department | None:
        """The category's responsible department at the grid (asked once per pair)."""
        from gridmgr.categories.operations import responsible_department

        key = (category.id, grid_code, city_id)
        if key not in self.departments_at:
            self.departments_at[key] = responsible_department(category, grid_code, city_id)
        return self.departments_at[key]

    def calendar(self, city_id: int) -> Calendar:
        if city_id not in self.calendars:
            self.calendars[city_id] = calendar_for_city(city_id)
        return self.calendars[city_id]


@dataclass
class _Case:
    reference: str
    values: dict
    history: list[dict]
    report: dict
    case_id: int | None = None  # an imported case given its later steps
    stored_version: int | None = None
    stored_state: str | None = None


def _replay(reference: str, steps: list[_Row], context: _Context,
            problems: _Problems) -> _Case | None:
    """The case's final columns and its history rows, or None (with problems) when a step
    breaks the workflow's rules."""
    first = steps[0]
    if first.step != "reported":
        problems.add(first, "bad_step_order", f"case {reference} must start with a reported "
                     f"step, not {first.step}.")
        return None
    category = context.categories.get(first.category)
    if category is None:
        problems.add(first, "unknown_category", f"no active category has the code "
                     f"{first.category!r:.40}.")
        return None
    try:
        place = locate(first.lon, first.lat)
    except OutsideCity:
        problems.add(first, "outside_city", f"the point ({first.lon:.6f}, {first.lat:.6f}) of "
                     f"case {reference} is outside every region.")
        return None
    replay = _Replayer(reference, category, place, context, problems)
    ok = True
    for row in steps:
        ok = replay.take(row) and ok
    return replay.result() if ok else None


def _extend(stored: _Stored, steps: list[_Row], context: _Context,
            problems: _Problems) -> _Case | None:
    """An imported case's steps after its imported ones, replayed from its stored state; None
    when there are none, or (with problems) when the file's first steps are not the imported
    ones or a later step breaks the workflow's rules."""
    reference = stored.values["code"]
    imported = [h for h in stored.history if (h.details or {}).get("imported")]
    if len(steps) < len(imported):
        problems.add(steps[-1], "history_shortened", f"the file holds {len(steps)} steps of "
                     f"{reference} and {len(imported)} were imported; an imported history is "
                     "not shortened.")
        return None
    ok = True
    category = stored.reported_category
    for number, (row, step) in enumerate(zip(steps, imported, strict=False), start=1):
        differences = _differences(row, step, category, context)
        if differences:
            problems.add(row, "history_changed", f"step {number} of {reference} is not the "
                         f"imported one: {'; '.join(differences)}. Imported history is not "
                         "rewritten: correct the case with the workflow.")
            ok = False
        category = (step.details or {}).get("category", category)
    later = steps[len(imported):]
    if not ok or not later:
        return None
    if len(imported) < len(stored.history):
        problems.add(later[0], "changed_since_import", f"{reference} has steps taken in gridmgr "
                     "since it was imported; the file's later steps cannot follow them.")
        return None
    replay = _Replayer(reference, db.session.get(Category, stored.values["category_id"]), None,
                       context, problems, stored)
    for row in later:
        ok = replay.take(row) and ok
    return replay.result() if ok else None


def _differences(row: _Row, step, category: str | None, context: _Context) -> list[str]:
    """What differs between a file's row and the history row imported from it, in words."""
    details = step.details or {}
    passed = details.get("passed", True)
    # a failed check is written as the workflow writes it: a rework with passed: false
    name = "check" if step.action == "rework" and passed is False else \
        {"report": "reported"}.get(step.action, step.action)
    found: list[str] = []

    def compare(column: str, in_file, imported) -> None:
        if in_file != imported:
            found.append(f"{column} {_shown(in_file)} in the file, {_shown(imported)} imported")

    compare("step", row.step, name)
    compare("time", row.at, step.at)
    compare("actor", row.actor or None, step.username or details.get("actor"))
    if row.role is not None:
        compare("actor_role", row.role, step.actor_role)
    compare("note", row.note, step.note or None)
    here = None if row.lon is None else (row.lon, row.lat)
    there = None if step.lon is None else (step.lon, step.lat)
    if (here is None) != (there is None) or here is not None and not all(
            math.isclose(a, b, abs_tol=1e-9) for a, b in zip(here, there, strict=True)):
        compare("location", here, there)
    if row.step == "reported":
        compare("category", row.category, category)
        if row.channel is not None:
            compare("channel", row.channel, details.get("channel"))
    if row.step == "file" and row.category:
        compare("category", row.category, details.get("category", category))
    if row.step == "dispatch" and row.department:
        department = context.departments.get(row.department)
        earlier = context.departments.get(str(details.get("department_id")))
        compare("department", department.name if department else row.department,
                earlier.name if earlier else None)
    if row.step == "extend" and details.get("deadline"):
        compare("deadline", row.deadline, datetime.fromisoformat(details["deadline"]))
    if row.step == "check":
        compare("passed", row.passed, passed)
    if row.step == "rate":
        compare("rating", row.rating, details.get("rating"))
    return found


def _shown(value) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return f"({value[0]:.6f}, {value[1]:.6f})"
    if isinstance(value, bool):
        return str(value).lower()
    return f"{str(value)!r:.60}"


class _Replayer:
    """Applies each step as the workflow's planner would, at the file's time; from nothing, or
    from the state an imported case is stored in (``stored``)."""

    def __init__(self, reference, category, place, context: _Context, problems: _Problems,
                 stored: _Stored | None = None):
        self.reference, self.category, self.context = reference, category, context
        self.problems = problems
        self.history: list[dict] = []
        self.report: dict = {}
        self.stored = stored
        if stored is not None:
            self.cal = context.calendar(stored.values["city_id"])
            self.state: str | None = stored.values["state"]
            self.v: dict = dict(stored.values)
            return
        self.cal = context.calendar(place.city_id)
        self.state = None
        self.v = {
            "code": reference, "city_id": place.city_id, "region_id": place.region.id,
            "grid_code": place.region.code, "category_id": category.id, "deadlines": {},
            "department_id": None, "worker_id": None, "handler_id": None, "reporter_id": None,
            "verified_by_id": None, "dispatched_at": None, "clock_unit": None,
            "deadline": None, "yellow_at": None, "paused_at": None, "paused_seconds": 0.0,
            "shelved_from": None, "accepted_at": None, "handled_at": None, "closed_at": None,
            "extension_count": 0, "rework_count": 0, "return_count": 0, "version": 0,
            "pending_request": None, "rating": None, "rating_note": None,
        }

    def take(self, row: _Row) -> bool:
        actor = self.context.users.get(row.actor)
        role = row.role or (actor.role if actor else None)
        if not self._allowed(row, role):
            return False
        if row.department and row.department not in self.context.departments:
            self.problems.add(row, "unknown_department", f"no department is called or "
                              f"numbered {row.department!r:.60}.")
            return False
        if row.category and row.category != self.category.code and row.step != "file" \
                and row.step != "reported":
            self.problems.add(row, "category_changed", "a case changes its category only when "
                              f"it is filed, not at {row.step}.")
            return False
        by = SimpleNamespace(id=actor.id if actor else None, role=role)
        if row.step == "reported":
            target, action, details = self._reported(row, actor)
        else:
            planned = self._step(row, by)
            if planned is None:
                return False
            target, action, details = planned
        details = {**details, "imported": True}
        if row.actor and actor is None:
            details["actor"] = row.actor
        self.history.append(dict(history_values(
            None, target, action=action, from_state=self.state, actor=by, note=row.note,
            lon=row.lon, lat=row.lat, details=details), at=row.at))
        self.state = target
        self.v["version"] += 1
        return True

    def _step(self, row: _Row, actor) -> tuple[str, str, dict] | None:
        """A workflow step by the table: the workflow's own plan of what it writes, at the
        file's time; (target state, recorded action, history details)."""
        step = TABLE_ACTIONS[row.step]
        case = SimpleNamespace(**{**self.v, "state": self.state, "category": self.category,
                                  "calendar": self.cal, "pending_request": None})
        for guard in step.guards:
            if guard in REPLAYED_GUARDS and not case_guard(guard, case, actor.id, False):
                self.problems.add(row, guard, f"{row.step} is refused: {GUARDS[guard]}.")
                return None
        data = StepInput(note=row.note, lon=row.lon, lat=row.lat, deadline=row.deadline,
                         passed=row.passed, rating=row.rating, category=row.category or None)
        if step.name == "dispatch":
            data.receiver = self._receiver(row)
            if data.receiver is None:
                return None
        if step.name == "file" and row.category and row.category != self.category.code:
            data.found_category = self.context.categories.get(row.category)
            if data.found_category is None:
                self.problems.add(row, "unknown_category", f"no active category has the code "
                                  f"{row.category!r:.40}.")
                return None
        if step.name == "extend" and row.deadline is None:
            self.problems.add(row, "bad_extension", "an extend step needs the new deadline (ISO "
                              "time with offset) in the deadline column.")
            return None
        try:
            plan = plan_step(step, case, actor, data, row.at)
        except DomainError as exc:
            self.problems.add(row, exc.code, str(exc.message)[:1].lower()
                              + str(exc.message)[1:])
            return None
        if plan.category is not None:
            self.category = plan.category
        self.v.update(plan.values)
        target, action = outcome(step, case, data)
        return target, action, plan.details

    def _receiver(self, row: _Row) -> tuple[int, None] | None:
        """The department a dispatch went to: the file's, else the category's responsible one
        at the grid (old systems dispatch to departments, not to workers)."""
        department = self.context.departments.get(row.department) if row.department else None
        if department is None:
            department = self.context.responsible(self.category, self.v["grid_code"],
                                                  self.v["city_id"])
        if department is None:
            self.problems.add(row, "receiver_required", "name the department the case was "
                              "dispatched to (no department is responsible for its category).")
            return None
        return department.id, None

    def _allowed(self, row: _Row, role: str | None) -> bool:
        if row.step == "reported":
            if self.state is not None:
                self.problems.add(row, "bad_step_order", f"case {self.reference} is reported "
                                  "twice.")
                return False
            if role is not None and "case.report" not in ROLE_ACTIONS[role]:
                self.problems.add(row, "role_not_allowed", f"a {role} may not report a case.")
                return False
            return True
        step = TABLE_ACTIONS[row.step]
        if self.state not in step.sources:
            self.problems.add(row, "bad_step_order", f"{row.step} cannot follow a "
                              f"{self.state} case ({self.reference} is {self.state} after its "
                              f"earlier steps; {row.step} needs {' or '.join(step.sources)}).")
            return False
        if role is not None and step.permission not in ROLE_ACTIONS[role]:
            self.problems.add(row, "role_not_allowed", f"a {role} may not take the step "
                              f"{row.step}.")
            return False
        if NOTE in step.needs and not row.note:
            self.problems.add(row, "note_required", f"a {row.step} step needs a note saying "
                              "why.")
            return False
        return True

    def _reported(self, row, actor):
        """The report that opens the case (the intake's part, not a workflow step)."""
        source = "citizen" if (row.role or (actor.role if actor else "citizen")) == "citizen" \
            else "inspector"
        channel = row.channel or ("hotline" if source == "citizen" else "patrol")
        self.v.update(state="reported", source=source, channel=channel, created_at=row.at,
                      description=row.note, reporter_id=actor.id if actor else None,
                      lon=row.lon, lat=row.lat)
        self.v["deadlines"] = start_stages(self.v["deadlines"], (REPORTED_STAGE[source],),
                                           self.category.limits, row.at, self.cal)
        self.report = {"reporter_id": actor.id if actor else None, "channel": channel,
                       "at": row.at, "description": row.note, "category_id": self.category.id}
        return "reported", "report", {"channel": channel}

    def result(self) -> _Case:
        self.v["state"] = self.state
        self.v["updated_at"] = self.history[-1]["at"]
        if self.stored is not None:
            return _Case(self.reference, self.v, self.history, self.report,
                         self.stored.case_id, self.stored.values["version"],
                         self.stored.values["state"])
        return _Case(self.reference, self.v, self.history, self.report)


# -- writing ---------------------------------------------------------------------------------

def _point(lon: float | None, lat: float | None) -> str | None:
    return None if lon is None else f"SRID=4326;POINT({lon!r} {lat!r})"


def _json(value: dict) -> dict:
    """JSON-ready details, datetimes as the workflow writes them (``str``)."""
    return json.loads(json.dumps(value, ensure_ascii=False, default=str))


def _write(batch: list[_Case]) -> None:
    """Cases, then their history and first reports, each as multi-row INSERTs."""
    case_columns = set(Case.__table__.columns.keys())
    case_ids = db.session.scalars(
        insert(Case.__table__).returning(Case.__table__.c.id, sort_by_parameter_order=True),
        [{**{k: v for k, v in case.values.items() if k in case_columns},
          "location": _point(case.values["lon"], case.values["lat"])} for case in batch]).all()
    _write_history(zip(batch, case_ids, strict=True))
    db.session.execute(insert(Report.__table__), [{
        "reporter_key": f"u{case.report['reporter_id']}" if case.report["reporter_id"]
        else "anon",
        "client_id": f"import:{case.reference}", "reporter_id": case.report["reporter_id"],
        "channel": case.report["channel"],
        "location": _point(case.values["lon"], case.values["lat"]), "coord_sys": "wgs84",
        "description": case.report["description"], "category_id": case.report["category_id"],
        "case_id": case_id, "created_at": case.report["at"]}
        for case, case_id in zip(batch, case_ids, strict=True)])


def _write_history(cases) -> None:
    """The history rows of (planned case, case id) pairs, as one multi-row INSERT: the rows
    ``history_values`` makes for the workflow's writer, at the file's times."""
    rows = [{**{k: v for k, v in h.items() if k not in ("lon", "lat")}, "case_id": case_id,
             "location": _point(h["lon"], h["lat"]), "details": _json(h["details"])}
            for case, case_id in cases for h in case.history]
    if rows:
        db.session.execute(insert(CaseHistory.__table__), rows)


# What a later step of an imported case writes beyond its state and version.
_EXTENDED = tuple(name for name in STEP_COLUMNS if name not in ("state", "version", "updated_at"))


def _write_extensions(extensions: list[_Case]) -> None:
    """Imported cases given their later steps by the workflow's one writer (only while they
    are as they were read), with their history rows at the file's times and no live events."""
    for case in extensions:
        stored = SimpleNamespace(id=case.case_id, state=case.stored_state,
                                 version=case.stored_version)
        records = [history_parameters({**h, "case_id": case.case_id}, h["at"])
                   for h in case.history]
        written = write_step(stored, case.values["state"],
                             {name: case.values[name] for name in _EXTENDED}, records,
                             updated_at=case.values["updated_at"], events=False)
        if written is None:
            db.session.rollback()
            raise Conflict(f"{case.reference} was changed meanwhile; nothing was changed: "
                           "import the file again.", code="conflict")
