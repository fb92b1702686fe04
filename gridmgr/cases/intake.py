"""Intake: a report becomes a new case, or joins an open one, exactly once per ``client_id``.

The report and its case are written by one statement, and the unique key on
``(reporter_key, client_id)`` decides between resends: a phone that resends, even at the same
moment from two connections, gets the first report back and never a second case.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace

import msgspec
import psycopg2.errors
from flask import current_app
from sqlalchemy import text

from gridmgr.calendar.deadlines import (
    Calendar,
    calendar_by_version,
    calendar_version_sql,
    current_clock,
    start_stages,
)
from gridmgr.cases.events import (
    CASE_RETURNING,
    history_and_event_ctes,
    step_parameters,
    step_values,
)
from gridmgr.cases.models import CHANNELS, OPEN_STATES
from gridmgr.cases.numbering import case_code_sql
from gridmgr.cases.photos import StoredPhoto, attach_photos
from gridmgr.database.prepared import GENERIC_PLAN, Prepared, autocommit_connection
from gridmgr.errors import Conflict, DomainError, InvalidInput, NotFound, Sentence
from gridmgr.extensions import db
from gridmgr.geo.coords import to_wgs84
from gridmgr.grids.locating import OutsideCity, grid_at_sql
from gridmgr.live.rooms import case_rooms_sql
from gridmgr.people.models import User
from gridmgr.people.policy import authorize, can

CITIZEN_ROLES = ("citizen",)
NEARBY_LIMIT = 20  # possible duplicates told at most
# Characters XML 1.0 cannot carry: the C0 controls but tab, LF and CR (NUL among them, which
# PostgreSQL text cannot hold either), lone surrogates, U+FFFE and U+FFFF. Stored, one of them
# would break every public Open311 XML list that shows the text.
_NOT_XML_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def invalid_text_field(fields: Mapping, prefix: str = "") -> str | None:
    """The name of the first field whose text (keys and values of nested objects and lists
    included) holds a character XML 1.0 cannot carry, or None."""
    # Concrete types only, no ABCs: a check against Mapping costs more than the search. The
    # top level's names are the caller's own fields; nested ones are data and are checked.
    search = _NOT_XML_TEXT.search
    for name, value in fields.items():
        if prefix and type(name) is str and search(name):
            return f"{prefix}{name}"
        kind = type(value)
        if kind is str:
            if search(value):
                return f"{prefix}{name}"
        elif kind is dict or kind is list or kind is tuple:
            found = invalid_text_field(value if kind is dict else dict(enumerate(value)),
                                       f"{prefix}{name}.")
            if found:
                return found
    return None


def refuse_invalid_text(fields: Mapping) -> None:
    """422 ``invalid_text`` naming the field whose text holds a control character (or another
    character XML 1.0 cannot carry): the one rule for every text that intake stores."""
    name = invalid_text_field(fields)
    if name is not None:
        raise InvalidInput(f"{name} holds a control character that text may not contain.",
                           code="invalid_text", field=name)


def refuse_unbounded_attributes(attributes: Mapping) -> None:
    """A report's ``attributes`` within the configured bounds (``GRIDMGR_REPORT_ATTRIBUTES_*``):
    nesting depth, keys and list items in all, length of each key and string (422), and size
    as JSON (413)."""
    config = current_app.config
    max_depth = config["GRIDMGR_REPORT_ATTRIBUTES_MAX_DEPTH"]
    max_keys = config["GRIDMGR_REPORT_ATTRIBUTES_MAX_KEYS"]
    max_string = config["GRIDMGR_REPORT_ATTRIBUTES_MAX_STRING"]
    max_bytes = config["GRIDMGR_REPORT_ATTRIBUTES_MAX_BYTES"]
    entries = 0
    pending: list[tuple[Mapping | list, int]] = [(attributes, 1)]
    while pending:
        container, depth = pending.pop()
        if depth > max_depth:
            raise InvalidInput(f"attributes may nest at most {max_depth} levels deep.",
                               code="attributes_too_deep")
        items = container.items() if isinstance(container, Mapping) else enumerate(container)
        for key, value in items:
            entries += 1
            if entries > max_keys:
                raise InvalidInput(f"attributes may hold at most {max_keys} keys and list "
                                   "items in all.", code="too_many_attributes")
            if isinstance(value, Mapping | list):
                pending.append((value, depth + 1))
            elif (isinstance(value, str) and len(value) > max_string) or (
                    isinstance(key, str) and len(key) > max_string):
                raise InvalidInput(f"An attribute's key or text may have at most {max_string} "
                                   "characters.", code="attribute_too_long")
    size = len(msgspec.json.encode(attributes))
    if size > max_bytes:
        raise InvalidInput(f"attributes take {size} bytes as JSON; at most {max_bytes} are "
                           "accepted.", code="attributes_too_large", status=413)


@dataclass
class ReportInput:
    """What a reporter sends; coordinates in ``coord_sys`` (converted to WGS 84 on entry)."""

    lon: float | None = None
    lat: float | None = None
    category: str | None = None
    description: str | None = None
    channel: str = "app"
    client_id: str | None = None
    coord_sys: str = "wgs84"
    duplicate_of: int | None = None
    contact_name: str | None = None
    contact_phone: str | None = None
    contact_email: str | None = None
    attributes: dict = field(default_factory=dict)
    photos: list[StoredPhoto] = field(default_factory=list)
    # A report sent to a named city (Open311's jurisdiction_id: its slug) is stored only there.
    within_city: str | None = None
    # A report sent with an API key (Open311), by the key's SHA-256: stored only while the key
    # is active, checked by the statement that stores it.
    api_key_hash: str | None = None
    # The category's questions (``Category.attributes``) the answers in ``attributes`` were
    # checked against: the report is stored only if they are still the category's.
    questions: list | None = None
    # The component (部件) the report is at, by its 16-digit code: its owner receives the case.
    component: str | None = None


@dataclass
class IntakeResult:
    report_id: int
    case_id: int
    case_code: str
    case_state: str
    created: bool
    tracking_token: str | None = None
    possible_duplicates: list[dict] = field(default_factory=list)
    # Which category was taken and why; the components of its category near the point.
    category_choice: dict | None = None
    nearby_components: list[dict] | None = None

    def to_dict(self) -> dict:
        body = {"report": {"id": self.report_id, "case_id": self.case_id},
                "case": {"id": self.case_id, "code": self.case_code, "state": self.case_state},
                "created": self.created, "possible_duplicates": self.possible_duplicates}
        if self.tracking_token:
            body["tracking_token"] = self.tracking_token
        if self.category_choice is not None:
            body["category_choice"] = self.category_choice
        if self.nearby_components is not None:
            body["nearby_components"] = self.nearby_components
        return body


class QuestionsChanged(DomainError):
    """The category's questions are no longer those the answers were checked against; nothing
    was stored. ``questions`` are the category's questions now."""

    status = 409

    def __init__(self, questions: list):
        super().__init__("questions_changed", "The category's questions changed meanwhile; "
                         "check the answers again.")
        self.questions = questions


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _content_hash(data: ReportInput) -> str:
    """The SHA-256 of everything a report says, keys sorted: a resend has the same, another
    report sent under the same ``client_id`` another."""
    return hashlib.sha256(msgspec.json.encode((
        data.lon, data.lat, data.coord_sys, data.category, data.description, data.channel,
        data.duplicate_of, data.contact_name, data.contact_phone, data.contact_email,
        data.attributes, sorted(p.sha256 for p in data.photos)), order="sorted")).hexdigest()


def submit_report(data: ReportInput, reporter: User | None) -> IntakeResult:
    """A report completed from the component it names (category, place) or, without a
    category, the one suggested for its description above the configured confidence (else
    ``uncategorised``), then stored (:func:`_store_report`); the answer says which category was
    taken and why, and lists the components of a component category near the point."""
    from gridmgr.categories.suggest import choose_for_report
    from gridmgr.components import operations as components

    authorize(reporter, "case.report")
    # The report as sent: what intake fills in below (a component's place, a suggested
    # category that retraining may change) must not make a resend look like another report.
    content = _content_hash(data)
    component = None
    if data.component is not None:
        component = components.component_for_report(data.component)
        data.category = data.category or component["category"]
        if data.lon is None or data.lat is None:
            data.lon, data.lat, data.coord_sys = component["lon"], component["lat"], "wgs84"
    choice = None
    if data.category is None and data.duplicate_of is None and data.description:
        choice = choose_for_report(data.description, data.lon, data.lat, data.coord_sys)
        data.category = choice["code"]
    result = _store_report(data, reporter, content)
    result.category_choice = choice or (
        {"code": data.category, "reason": "named by the reporter"} if data.category
        else {"code": None, "reason": "the category of the case it joins"})
    if component is not None and result.created:
        components.link_case(result.case_id, component["id"])
    elif (component is None and result.created and (data.category or "").startswith("C")
          and data.lon is not None and data.lat is not None):
        result.nearby_components = components.nearest_components(
            *to_wgs84(data.lon, data.lat, data.coord_sys), data.category)
    return result


def _store_report(data: ReportInput, reporter: User | None, content: str) -> IntakeResult:
    """Locate, classify and store a report as a new case or as a reporter of ``duplicate_of``;
    a resent ``client_id`` whose report as sent hashes to ``content`` returns the first answer
    (``created`` False)."""
    authorize(reporter, "case.report")
    if data.channel not in CHANNELS:
        raise InvalidInput(f"Unknown channel {data.channel!r}; use one of {', '.join(CHANNELS)}.",
                           code="bad_channel")
    if data.attributes:
        refuse_unbounded_attributes(data.attributes)
    key = f"u{reporter.id}" if reporter else "anon"
    client_id = data.client_id or uuid.uuid4().hex
    if data.duplicate_of is not None:
        return _join_open_case(data, reporter, key, client_id, content)
    lon, lat = _point(data)
    category = data.category or _category(data).code
    return _submit_new_case(data, reporter, key, client_id, content, lon, lat, category)


def _join_open_case(data: ReportInput, reporter: User | None, key: str, client_id: str,
                    content: str) -> IntakeResult:
    """A report that joins the open case ``duplicate_of``: one more reporter, with the report,
    its history row and live event, written by one statement (:data:`_JOIN_CASE`) in the
    session's transaction."""
    replay = _existing(key, client_id, content)
    if replay is not None:
        return replay
    lon, lat = _point(data)
    named = category_by_code(data.category) if data.category else None
    token = None if reporter else secrets.token_urlsafe(24)
    params = {
        "reporter_key": key, "client_id": client_id, "content_hash": content,
        "reporter_id": reporter.id if reporter else None,
        "token_hash": hash_token(token) if token else None, "channel": data.channel,
        "lon": lon, "lat": lat, "coord_sys": data.coord_sys, "description": data.description,
        "attributes": json.dumps(data.attributes, ensure_ascii=False),
        "contact_name": data.contact_name, "contact_phone": data.contact_phone,
        "contact_email": data.contact_email,
    }
    case, row = _join_case(data.duplicate_of, reporter, params, named)
    if row.report_id is None:  # the same client_id committed meanwhile: answer with it
        db.session.rollback()
        return _existing(key, client_id, content)
    if data.photos:
        attach_photos(data.photos, case_id=case.id, report_id=row.report_id,
                      history_id=row.history_id, uploaded_by=reporter.id if reporter else None)
    db.session.commit()
    return IntakeResult(row.report_id, case.id, case.code, case.state, True, token, [])


@dataclass(frozen=True)
class _Place:
    """What the database said of a report's place and category: the city whose calendar times
    the first stage, the calendar's version and the category's time limits. The deadline is
    computed from them before the statement that checks them (``_REPORT_AS_NEW_CASE``)."""

    city_id: int
    calendar_version: str | None
    limits: dict

    def calendar(self) -> Calendar:
        """The city's calendar, cached per process under its version."""
        return calendar_by_version(self.city_id, self.calendar_version)

    def matches(self) -> dict:
        return {"expect_city": self.city_id, "expect_calendar": self.calendar_version,
                "expect_limits": self.limits}


# Per process: the place of the last report of each category in each 0.1° cell (about 10 km).
# A stale or missing entry costs the statement's second run, never a wrong deadline.
_PLACES: dict[tuple[str, int, int], _Place] = {}
_NO_PLACE = _Place(0, None, {})


def _submit_new_case(data: ReportInput, reporter: User | None, key: str, client_id: str,
                     content: str, lon: float, lat: float, category: str) -> IntakeResult:
    """``submit_report`` for a new case at (``lon``, ``lat``) in WGS 84, of the category whose
    code is ``category``: every new case, in one statement (``_REPORT_AS_NEW_CASE``).

    Without photos it runs on a pooled connection in autocommit mode: it commits by itself,
    atomically, and no BEGIN or COMMIT round trip is needed. Photos are attached by further
    statements, so that path uses the session's transaction."""
    if data.photos:
        try:
            result = _store_new_case(db.session.connection().connection, data, reporter, key,
                                     client_id, content, lon, lat, category)
        except psycopg2.errors.UniqueViolation as exc:
            db.session.rollback()
            return _resent_meanwhile(exc, key, client_id, content)
        if result is not None:
            db.session.commit()
            return result
        db.session.rollback()
        return _existing(key, client_id, content)
    with autocommit_connection() as connection:
        try:
            result = _store_new_case(connection, data, reporter, key, client_id, content,
                                     lon, lat, category)
        except psycopg2.errors.UniqueViolation as exc:
            return _resent_meanwhile(exc, key, client_id, content)
    return result if result is not None else _existing(key, client_id, content)


def _resent_meanwhile(exc: psycopg2.errors.UniqueViolation, key: str, client_id: str,
                      content: str) -> IntakeResult:
    """The same ``client_id`` was stored by a concurrent request after the context statement
    looked: the insert failed as a whole; answer with the report that won."""
    if exc.diag.constraint_name != "uq_reports_reporter_client":
        raise exc
    return _existing(key, client_id, content)


def _store_new_case(connection, data: ReportInput, reporter: User | None, key: str,
                    client_id: str, content: str, lon: float, lat: float,
                    category: str) -> IntakeResult | None:
    """``_REPORT_AS_NEW_CASE`` on ``connection``; None when ``client_id`` is already stored.

    The stage deadline is computed for the place the last report near here was found in; if
    the statement finds another city, calendar or category limits, it writes nothing and is
    run again with the deadline for what it found (the first report of a category in a cell
    after a start, or after an edit, takes two)."""
    token = None if reporter else secrets.token_urlsafe(24)
    source = "citizen" if reporter is None or reporter.role in CITIZEN_ROLES else "inspector"
    stage = "verify" if source == "citizen" else "file"
    # The case as far as it is known before the statement: it fills in id, code and place.
    case = SimpleNamespace(
        id=None, code=None, state="reported", city_id=None, grid_code="",
        category=category, lon=lon, lat=lat, deadline=None, yellow_at=None, source=source,
        deadlines={},
        handled_at=None, paused_at=None, department_id=None, worker_id=None,
        reporter_id=reporter.id if reporter else None)
    step = step_values(case, action="report", from_state=None, actor=reporter, lon=lon, lat=lat,
                       note=data.description, details={"channel": data.channel})
    params = {
        **step, "rooms": [f"worker:{case.reporter_id}"] if case.reporter_id else [],
        "key": key, "client_id": client_id, "category": category,
        "tz": current_app.config["GRIDMGR_TIMEZONE"],
        "reporter_key": key, "reporter_id": case.reporter_id, "content_hash": content,
        "token_hash": hash_token(token) if token else None, "channel": data.channel,
        "coord_sys": data.coord_sys, "description": data.description,
        "attributes": data.attributes, "contact_name": data.contact_name,
        "contact_phone": data.contact_phone, "contact_email": data.contact_email,
        "source": source, "cos_lat": max(math.cos(math.radians(lat)), 0.01),
        "within_city": data.within_city, "api_key_hash": data.api_key_hash,
        "questions": data.questions,
    }
    cell = (category, round(lon * 10), round(lat * 10))
    place = _PLACES.get(cell, _NO_PLACE)
    for _ in range(3):  # a calendar edited between two runs is the only reason for a third
        params["deadlines"] = _stage_deadline(place.limits, stage, place.calendar)
        case.deadlines = params["deadlines"]
        params["payload"] = {**step["payload"], "stage_clock": current_clock(case)}
        row = _REPORT_AS_NEW_CASE.one({**params, **place.matches()}, connection)
        if row.replay_id is not None:
            return None
        if not row.key_ok:
            raise DomainError("api_key_invalid", "api_key is not valid (unknown or revoked).",
                              status=403)
        if row.region_id is None:
            raise OutsideCity(lon, lat)
        if row.category_id is None:
            raise InvalidInput(Sentence("No active category has the code %(code)s.",
                                        code=f"{category!r:.60}"),
                               code="unknown_category")
        if data.within_city is not None and row.within_city_id is None:
            raise NotFound(f"No city has the slug {data.within_city!r:.60}.",
                           code="city_not_found")
        if data.within_city is not None and row.within_city_id != row.city_id:
            raise InvalidInput(f"The point is not inside the city {data.within_city!r:.60}.",
                               code="outside_named_city")
        if (data.questions is not None and row.report_id is None
                and (row.questions or []) != data.questions):
            raise QuestionsChanged(row.questions or [])
        if row.report_id is not None:
            break
        place = _Place(row.city_id, row.calendar_version, row.limits or {})
        if len(_PLACES) > 4096:
            _PLACES.clear()
        _PLACES[cell] = place
    else:
        raise RuntimeError("the city's calendar kept changing while a report was stored")
    duplicates = [{"id": d["id"], "code": d["code"], "state": d["state"],
                   "distance_m": round(d["distance"], 1), "reporter_count": d["reporter_count"],
                   "created_at": datetime.fromisoformat(d["created_at"]).isoformat()}
                  for d in msgspec.json.decode(row.nearby)]
    if data.photos:
        attach_photos(data.photos, case_id=row.case_id, report_id=row.report_id,
                      history_id=row.history_id, uploaded_by=case.reporter_id)
    return IntakeResult(row.report_id, row.case_id, row.case_code, "reported", True, token,
                        duplicates)


def nearby_cases(lon: float, lat: float, category, exclude: int | None = None,
                 limit: int = NEARBY_LIMIT) -> list[dict]:
    """Open cases of ``category`` within its duplicate radius and time window, nearest first."""
    radius = float(category.duplicate_radius_m)
    rows = db.session.execute(_NEARBY, {
        "lon": lon, "lat": lat, "category_id": category.id, "radius": radius,
        "deg": radius / (111_320 * max(math.cos(math.radians(lat)), 0.01)),
        "hours": float(category.duplicate_window_hours), "open": list(OPEN_STATES),
        "exclude": exclude or 0, "limit": limit}).all()
    return [{"id": r.id, "code": r.code, "state": r.state, "distance_m": round(r.distance, 1),
             "reporter_count": r.reporter_count, "created_at": r.created_at.isoformat()}
            for r in rows]


def category_by_code(code: str):
    """The active category with ``code``; 422 ``unknown_category`` otherwise."""
    from gridmgr.categories.models import Category

    found = db.session.execute(db.select(Category).where(
        Category.code == code, Category.active.is_(True))).scalar_one_or_none()
    if found is None:
        raise InvalidInput(Sentence("No active category has the code %(code)s.",
                                        code=f"{code!r:.60}"),
                           code="unknown_category")
    return found


def _category(data: ReportInput):
    if data.category:
        return category_by_code(data.category)
    # A description without a category was given one by submit_report's suggestion.
    raise InvalidInput("A report needs a category code or a description.",
                       code="category_required")


def _point(data: ReportInput) -> tuple[float, float]:
    lon, lat = data.lon, data.lat
    if lon is None or lat is None:
        exif = next((p for p in data.photos if p.exif_lon is not None), None)
        if exif is None:
            raise InvalidInput("A report needs lon and lat (or a photo with GPS in its EXIF).",
                               code="location_required")
        return exif.exif_lon, exif.exif_lat
    if not (-180 <= lon <= 180 and -90 <= lat <= 90) or math.isnan(lon) or math.isnan(lat):
        raise InvalidInput("lon must be in [-180, 180] and lat in [-90, 90].",
                           code="bad_location")
    return to_wgs84(lon, lat, data.coord_sys)


def _stage_deadline(limits: dict | None, stage: str, calendar: Callable[[], Calendar]) -> dict:
    """The stage's clock from now by a category's ``limits`` ({} when it has none for the
    stage); ``calendar`` gives the city's working calendar, asked for only when needed."""
    return start_stages({}, (stage,), limits, datetime.now(UTC), calendar)


def _joins_by_decision(reporter: User | None, case) -> bool:
    """Whether ``reporter`` may join a report to ``case`` whatever its place and kind: staff
    who decide what becomes a case (``case.file``) there merge by their own judgement; anyone
    else joins only a plausible duplicate."""
    if reporter is None or reporter.role in CITIZEN_ROLES:
        return False
    return can(reporter, "case.file", region_code=case.grid_code, city_id=case.city_id)


def _join_case(case_id: int, reporter: User | None, params: dict, named=None):
    """One more reporter of the open case ``case_id``: a report of its category (or of
    ``named``) within the category's duplicate radius and window (unless the reporter joins by
    decision); the case as read and the statement's row (``report_id`` None: the same
    ``client_id`` was stored meanwhile). 404, 409 or 422 ``not_a_duplicate`` otherwise, with
    nothing written. The history row and live event are made from the case as read, and
    written only while it is still that version: a case that moved meanwhile is read again."""
    tried = None
    while True:
        case = db.session.execute(_CASE_TO_JOIN, {"id": case_id}).one_or_none()
        if case is None:
            db.session.rollback()
            raise NotFound(f"No case has the id {case_id}.", code="case_not_found")
        if case.state not in OPEN_STATES:
            db.session.rollback()
            raise Conflict(f"Case {case_id} is {case.state} and takes no more reports; report "
                           "anew.", code="case_not_open")
        if case.version == tried:
            db.session.rollback()
            raise InvalidInput(
                f"Case {case_id} is not a report of this kind near here and recent enough to "
                "be the same problem; report it as a new problem.", code="not_a_duplicate")
        step = step_parameters(case, action="report_joined", from_state=case.state,
                               actor=reporter, lon=params["lon"], lat=params["lat"],
                               note=params["description"],
                               details={"channel": params["channel"]})
        row = db.session.execute(_JOIN_CASE, {
            **params, **step, "category_id": named.id if named else case.category_id,
            "version": case.version, "by_decision": _joins_by_decision(reporter, case),
            "open": list(OPEN_STATES)}).one()
        if row.case_id is not None:
            return case, row
        tried = case.version


def _existing(key: str, client_id: str, content: str) -> IntakeResult | None:
    """The report this sender already stored under ``client_id``, if it says the same as this
    one; another report under a used ``client_id`` is refused (409 ``client_id_reused``).
    ``client_id`` is the sender's own for a signed-in reporter, and shared by every anonymous
    one: an anonymous sender is told nothing of the report that holds it."""
    row = db.session.execute(text("""
        SELECT r.id AS report_id, r.content_hash, c.id, c.code, c.state
        FROM reports r JOIN cases c ON c.id = r.case_id
        WHERE r.reporter_key = :key AND r.client_id = :client_id"""),
        {"key": key, "client_id": client_id}).one_or_none()
    if row is None:
        return None
    if row.content_hash != content:
        if key == "anon":
            raise Conflict("This client_id was already used for another report; send this "
                           "report with a new client_id.", code="client_id_reused")
        raise Conflict(f"This client_id was already used for your report {row.report_id} "
                       f"(case {row.code}), which says something else; send a new report with "
                       "a new client_id.", code="client_id_reused",
                       report={"id": row.report_id, "case_id": row.id},
                       case={"id": row.id, "code": row.code, "state": row.state})
    return IntakeResult(row.report_id, row.id, row.code, row.state, False)


_REPORT_COLUMNS = """reporter_key, client_id, content_hash, reporter_id, tracking_token_hash,
    channel, location, coord_sys, description, category_id, attributes, contact_name,
    contact_phone, contact_email, case_id, duplicate_of"""
_REPORT_VALUES = """:reporter_key, :client_id, :content_hash, :reporter_id, :token_hash, :channel,
    ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :coord_sys, :description, :category_id,
    CAST(:attributes AS jsonb), :contact_name, :contact_phone, :contact_email"""

# A duplicate report joins an open case: one more reporter, its report, history row and live
# event, in one statement, while the case is the version its history row and event were made
# from. A duplicate is of the case's category, within the category's radius (on the sphere, as
# the duplicate check measures) and reported within its window; staff who file cases may join
# by decision.
_JOIN_CASE = text(f"""
WITH c AS (
    UPDATE cases SET reporter_count = reporter_count + 1, version = version + 1,
                     updated_at = now()
    WHERE id = :case_id AND version = :version AND state = ANY(:open)
      AND (:by_decision OR EXISTS (
          SELECT FROM categories k
          WHERE k.id = cases.category_id AND k.id = :category_id
            AND cases.created_at >= now() - make_interval(
                secs => CAST(k.duplicate_window_hours AS float8) * 3600)
            AND ST_DWithin(cases.location::geography,
                           ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography,
                           k.duplicate_radius_m, false)))
    RETURNING id
), r AS (
    INSERT INTO reports ({_REPORT_COLUMNS})
    SELECT {_REPORT_VALUES}, c.id, c.id FROM c
    ON CONFLICT (reporter_key, client_id) DO NOTHING
    RETURNING id
), {history_and_event_ctes(
    "c JOIN r ON true", "CAST(:details AS jsonb) || jsonb_build_object('report_id', r.id)",
    case_id="c.id")}
SELECT (SELECT id FROM c) AS case_id, (SELECT id FROM r) AS report_id,
       (SELECT id FROM h) AS history_id
""")
# The case a report joins, as its history row and live event tell it.
_CASE_TO_JOIN = text(f"SELECT {CASE_RETURNING} FROM cases WHERE id = :id")


def _near_open_cases(category_id: str = ":category_id", deg: str = ":deg",
                     hours: str = ":hours", radius: str = ":radius", only_if: str = "true",
                     open_states: str = ":open", exclude: str = ":exclude",
                     limit: str = ":limit") -> str:
    """CTEs ``box`` and ``near``: the open cases of a category reported within its time window
    near (:lon, :lat), nearest first. The box (the radius's bounding box, ``deg`` degrees)
    with the category and the time comes from one GiST index (migration 0014); state and exact
    distance are checked after. The fence (MATERIALIZED) keeps every plan, generic ones
    included, off the category's btree index, which walks every recent case of the category.
    Distances are on the sphere (``use_spheroid`` false): within a duplicate radius of tens of
    metres they differ from the spheroid's by millimetres, and cost half as much.
    The arguments are SQL: parameters by default, or what the statement itself found."""
    return f"""
box AS MATERIALIZED (
    SELECT id, code, state, reporter_count, created_at, location FROM cases
    WHERE {only_if}
      AND ST_DWithin(location, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), {deg})
      AND category_id = {category_id}
      AND created_at >= now() - make_interval(secs => CAST({hours} AS float8) * 3600)
), near AS (
    SELECT id, code, state, reporter_count, created_at,
           ST_Distance(location::geography,
                       ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography, false) AS distance
    FROM box
    WHERE state = ANY({open_states}) AND id <> {exclude}
      AND ST_DWithin(location::geography,
                     ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography, {radius}, false)
    ORDER BY distance
    LIMIT {limit}
)"""


_NEARBY = text(f"WITH {_near_open_cases()} SELECT * FROM near")

# A report as a new case, in one statement: whether this client_id is known, which grid holds
# the point (the rule of ``gridmgr.grids.locating``), the active category and the version of
# the city's calendar; then, only if the report is new and the city, calendar and limits are
# those its deadline was computed for (``_Place``), the new case's number (so a resend, a
# refusal or a run that writes nothing leaves no gap in the numbers), the case, its report, the
# report's history row and live event (payload and rooms completed with the place), and the
# duplicate check (open cases of the category near the point, as ``_NEARBY``; the new case is
# not among them).
_NEW_CASE_CONTEXT = f"""
hit AS (
    {grid_at_sql()}
), ctx AS MATERIALIZED (
    SELECT (SELECT r.id FROM reports r
            WHERE r.reporter_key = :key AND r.client_id = :client_id) AS replay_id,
           hit.id AS region_id, hit.code AS grid_code, hit.city_id,
           cat.id AS category_id, cat.limits, cat.duplicate_radius_m,
           cat.duplicate_window_hours,
           {calendar_version_sql("hit.city_id")} AS calendar_version,
           cat.attributes AS questions,
           (SELECT id FROM cities WHERE slug = :within_city) AS within_city_id,
           (:api_key_hash IS NULL OR EXISTS (
               SELECT FROM open311_api_keys
               WHERE key_hash = :api_key_hash AND revoked_at IS NULL)) AS key_ok
    FROM (VALUES (1)) AS one
    LEFT JOIN hit ON true
    LEFT JOIN categories cat ON cat.code = :category AND cat.active
), ok AS MATERIALIZED (
    SELECT ctx.*, nextval('cases_id_seq') AS case_id FROM ctx
    WHERE replay_id IS NULL AND region_id IS NOT NULL AND category_id IS NOT NULL
      AND city_id = :expect_city AND calendar_version IS NOT DISTINCT FROM :expect_calendar
      AND coalesce(limits, '{{}}') = CAST(:expect_limits AS jsonb)
      AND key_ok AND (:within_city IS NULL OR city_id = within_city_id)
      AND (:questions = 'null' OR coalesce(questions, '[]') = :questions)
)"""
_NEW_CASE_ROOMS = case_rooms_sql("c.city_id", "c.grid_code",
                                 more="ARRAY(SELECT jsonb_array_elements_text(:rooms))")
# The radius in degrees of longitude here. ``cos_lat`` is typed: left to inference it was an
# integer, 0.77 became 1, and the box missed cases due east or west near the radius.
_DEGREES_OF_RADIUS = "(SELECT duplicate_radius_m / (111320 * CAST(:cos_lat AS float8)) FROM ok)"
# The grid lookup runs best as a generic plan, and so does the rest (left to PostgreSQL's
# choice the statement cost twice as much).
_REPORT_AS_NEW_CASE = Prepared("gridmgr_intake_new_case", f"""
WITH {_NEW_CASE_CONTEXT}, c AS (
    INSERT INTO cases (id, code, city_id, state, source, channel, category_id, region_id,
                       grid_code, location, description, reporter_id, deadlines)
    SELECT case_id, {case_code_sql("case_id")}, city_id, 'reported', :source, :channel,
           category_id, region_id, grid_code,
           ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :description, :reporter_id, :deadlines
    FROM ok
    RETURNING id, code, city_id, grid_code, category_id
), r AS (
    INSERT INTO reports ({_REPORT_COLUMNS})
    SELECT {_REPORT_VALUES.replace(":category_id", "c.category_id")}, c.id, NULL FROM c
    RETURNING id
), {history_and_event_ctes(
    "c JOIN r ON true", ":details || jsonb_build_object('report_id', r.id)",
    case_id="c.id", rooms=_NEW_CASE_ROOMS,
    payload=":payload || jsonb_build_object("
            "'id', c.id, 'code', c.code, 'grid_code', c.grid_code)")},
{_near_open_cases(category_id="(SELECT category_id FROM ok)", deg=_DEGREES_OF_RADIUS,
                  hours="(SELECT duplicate_window_hours FROM ok)",
                  radius="(SELECT duplicate_radius_m FROM ok)", only_if="EXISTS (SELECT FROM ok)",
                  open_states=f"'{{{','.join(OPEN_STATES)}}}'::text[]", exclude="0",
                  limit=str(NEARBY_LIMIT))}
SELECT ctx.replay_id, ctx.region_id, ctx.city_id, ctx.category_id, ctx.calendar_version,
       ctx.key_ok, ctx.within_city_id,
       CASE WHEN NOT EXISTS (SELECT FROM r) THEN ctx.questions END AS questions,
       (SELECT id FROM c) AS case_id, (SELECT code FROM c) AS case_code,
       (SELECT id FROM r) AS report_id,
       (SELECT id FROM h) AS history_id,
       -- read only when nothing was written (the deadline's place was not this one)
       CASE WHEN NOT EXISTS (SELECT FROM r) THEN ctx.limits END AS limits,
       (SELECT coalesce(json_agg(json_build_object(
            'id', id, 'code', code, 'state', state, 'distance', distance,
            'reporter_count', reporter_count, 'created_at', created_at) ORDER BY distance),
            '[]')::text FROM near) AS nearby
FROM ctx
""", setup=GENERIC_PLAN, types={
    "lon": "float8", "lat": "float8", "cos_lat": "float8", "expect_city": "integer",
    "reporter_id": "integer", "actor_id": "integer", **dict.fromkeys((
        "key", "client_id", "content_hash", "tz", "category", "expect_calendar", "source",
        "channel", "description", "reporter_key", "token_hash", "coord_sys", "contact_name",
        "contact_phone", "contact_email", "actor_role", "action", "from_state", "to_state",
        "note", "event", "within_city", "api_key_hash"), "text"),
    **dict.fromkeys(("expect_limits", "deadlines", "attributes", "details", "payload", "rooms",
                     "questions"), "jsonb")})
