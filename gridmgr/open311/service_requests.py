"""Cases seen as GeoReport service requests: filing one from an Open311 POST, reading them back.

A request is a case; its ``service_request_id`` is the case code (e.g. ``20261126000042``).
gridmgr's states map to GeoReport's two statuses:

* ``open``: reported, verified, filed, dispatched, accepted, handled, checked, shelved
* ``closed``: closed (结案) and cancelled (作废; the status notes say why)

The detailed state, the unit grid code, duplicates and the public notes of the history are in
``extended_attributes`` when the caller asks with ``extensions=true``. Reporters' contact
details are stored on the report and never read here; what is published follows
:mod:`gridmgr.opendata.redaction` (a citizen's report once verified, free text redacted, the
public notes only, the point rounded).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import case as sql_case
from sqlalchemy import func, select, text, tuple_
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.orm import aliased

from gridmgr.errors import Conflict, DomainError, InvalidInput, NotFound
from gridmgr.extensions import db
from gridmgr.grids.models import ancestor_codes
from gridmgr.open311.services import (
    Jurisdiction,
    check_attributes,
    forget_service,
    service_to_file,
)
from gridmgr.opendata.dates import parse_w3c_datetime, w3c_datetime
from gridmgr.opendata.redaction import (
    public_coordinate,
    public_note,
    published_case_sql,
    redact,
)

CLOSED_STATES = ("closed", "cancelled")
STATUSES = ("open", "closed")
DEFAULT_WINDOW = timedelta(days=90)
MAX_LIMIT = 1000
# Pages beyond this are refused: their offset would overflow PostgreSQL's bigint long before.
MAX_PAGE = 1_000_000
MAX_DESCRIPTION = 4000

STATE_TEXT = {
    "reported": ("Reported; an inspector will verify it on site.", "已上报，等待监督员现场核实。"),
    "verified": ("Verified on site.", "已现场核实。"),
    "filed": ("Filed as a case.", "已立案。"),
    "cancelled": ("Cancelled.", "已作废。"),
    "dispatched": ("Dispatched to the responsible unit.", "已派遣至责任单位。"),
    "accepted": ("Accepted by the responsible unit.", "责任单位已签收。"),
    "handled": ("Handled; awaiting an on-site check.", "已处置，等待现场核查。"),
    "checked": ("Checked on site.", "已现场核查。"),
    "closed": ("Closed.", "已结案。"),
    "shelved": ("Shelved.", "已挂账。"),
}


def status_of(state: str) -> str:
    """The GeoReport status (``open``/``closed``) of a gridmgr case state."""
    return "closed" if state in CLOSED_STATES else "open"


def _state_text(state: str, lang: str) -> str:
    en, zh = STATE_TEXT.get(state, (state, state))
    return zh if lang == "zh" else en


# ---------------------------------------------------------------------------------------------
# POST requests


@dataclass
class NewRequest:
    """An Open311 POST, parsed from the form: everything but the API key and the photo."""

    service_code: str | None
    lat: str | None
    long: str | None
    address_string: str | None = None
    address_id: str | None = None
    description: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    media_url: str | None = None
    attributes: dict[str, list[str]] | None = None


def parse_attributes(form) -> dict[str, list[str]]:
    """``attribute[code]=v`` and ``attribute[code][]=v`` pairs of a MultiDict, by code."""
    answers: dict[str, list[str]] = {}
    for key in form:
        if not key.startswith("attribute[") or "]" not in key:
            continue
        code = key[len("attribute["):key.index("]")]
        if not code:
            raise DomainError("invalid_attribute", f"{key!r} names no attribute code.")
        answers.setdefault(code, []).extend(form.getlist(key))
    return answers


def posted_fields(request) -> tuple[dict[str, str], dict[str, list[str]]]:
    """A POST's fields (the query's included, the body's first) as text, and its
    ``attribute[code]`` answers by code, from a form or from a JSON object; 400
    ``malformed_json`` for a JSON body that is not an object of texts, numbers and answers."""
    if not request.is_json:
        return request.values, parse_attributes(request.values)
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise DomainError("malformed_json", "The body is not a JSON object of the request's "
                          "fields.")
    fields: dict[str, str] = dict(request.args.items())
    answers: dict[str, list[str]] = {}
    for key, value in body.items():
        if value is None:  # as if left out
            continue
        if key == "attribute" and isinstance(value, dict):
            for code, given in value.items():
                answers.setdefault(str(code), []).extend(_json_texts(f"attribute[{code}]", given))
        elif key.startswith("attribute["):
            code = key[len("attribute["):key.index("]")] if "]" in key else ""
            if not code:
                raise DomainError("invalid_attribute", f"{key!r} names no attribute code.")
            answers.setdefault(code, []).extend(_json_texts(key, value))
        else:
            texts = _json_texts(key, value)
            if len(texts) != 1:
                raise DomainError("malformed_json", f"{key} must be one text or number.")
            fields[key] = texts[0]
    return fields, answers


def _json_texts(name: str, value) -> list[str]:
    """A JSON value as the texts a form would carry: a text, a number or a list of them."""
    values = value if isinstance(value, list) else [value]
    texts = []
    for item in values:
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise DomainError("malformed_json", f"{name} must be a text or a number.")
        texts.append(item if isinstance(item, str) else repr(item))
    return texts


def _coordinate(value: str | None, name: str, low: float, high: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DomainError("invalid_location", f"{name} must be a number in degrees (WGS 84), "
                          f"not {value!r:.40}.") from None
    if math.isnan(number) or not low <= number <= high:
        raise DomainError("invalid_location", f"{name} must be between {low:g} and {high:g}.")
    return number


def _bounded(value: str | None, name: str, limit: int) -> str | None:
    value = (value or "").strip() or None
    if value is not None and len(value) > limit:
        raise DomainError("too_long", f"{name} may have at most {limit} characters.")
    return value


def _language(given: list[str] | None) -> str | None:
    """``attribute[language]`` (``zh``, ``en``, or a tag such as ``zh-CN``) as gridmgr's
    language code; 400 ``invalid_language`` for any other."""
    from gridmgr.notify.messages import LANGUAGES

    values = [v.strip() for v in given or [] if v.strip()]
    if not values:
        return None
    short = values[0].lower().split("-")[0].split("_")[0]
    if len(values) > 1 or short not in LANGUAGES:
        raise DomainError("invalid_language", f"attribute[language] is one of "
                          f"{', '.join(LANGUAGES)}, not {values[0]!r:.20}.")
    return short


def _stored_media(upload) -> list:
    """The ``media`` file of a multipart POST, checked and stored like any report photo."""
    from gridmgr.cases.photos import store_photo

    if upload is None:
        return []
    data = upload.read()
    return [store_photo(data, upload.filename)] if data else []


def file_request(new: NewRequest, jurisdiction_id: str | None, api_key: str, media,
                 lang: str) -> dict:
    """File an Open311 POST as an anonymous report on the ``open311`` channel; it becomes a
    case that follows the normal workflow. ``media`` is the uploaded file or None; it is
    stored only once everything else is accepted. Returns the GeoReport answer.

    It takes the intake's one statement, as every report does: the API key, the jurisdiction
    (a city's slug) and the service's questions are checked there, with the place and the
    category, so a request costs what a report of the mobile API costs."""
    from gridmgr.cases.intake import (
        QuestionsChanged,
        ReportInput,
        refuse_invalid_text,
        submit_report,
    )
    from gridmgr.open311.keys import key_digest

    refuse_invalid_text(vars(new))
    if not new.service_code:
        raise DomainError("missing_service_code", "service_code is required.")
    try:
        service = service_to_file(new.service_code)
    except NotFound as exc:  # for a POST an unknown service is a bad request
        raise DomainError("unknown_service_code", exc.message) from None
    if not (new.lat or "").strip() or not (new.long or "").strip():
        if new.address_string or new.address_id:
            raise DomainError("address_not_supported",
                              "This endpoint locates requests by lat and long only: there is no "
                              "address index to look up address_string or address_id. "
                              "Send lat and long (WGS 84).")
        raise DomainError("missing_location", "lat and long are required (WGS 84 degrees).")
    lat = _coordinate(new.lat, "lat", -90, 90)
    lon = _coordinate(new.long, "long", -180, 180)
    media_url = _bounded(new.media_url, "media_url", 1000)
    if media_url and not media_url.lower().startswith(("http://", "https://")):
        raise DomainError("invalid_media_url", "media_url must be an http or https URL.")
    email = _bounded(new.email, "email", 254)
    if email and "@" not in email:
        raise DomainError("invalid_email", "email is not an e-mail address.")
    name = " ".join(p for p in (_bounded(new.first_name, "first_name", 95),
                                _bounded(new.last_name, "last_name", 95)) if p) or None
    description = _bounded(new.description, "description", MAX_DESCRIPTION)
    phone = _bounded(new.phone, "phone", 50)
    jurisdiction_id = (jurisdiction_id or "").strip() or None
    # The language the reporter's messages are written in: not a question of any service.
    asked = dict(new.attributes or {})
    language = _language(asked.pop("language", None))
    photos = None
    for _ in range(2):  # a second time only when the service's questions changed meanwhile
        try:
            answers = check_attributes(service, asked)
        except DomainError:
            # Refused by the questions this process remembers: refuse only by today's.
            forget_service(new.service_code)
            service = service_to_file(new.service_code)
            answers = check_attributes(service, asked)
        if media_url:
            answers["_media_url"] = media_url
        if language:
            answers["language"] = language
        if photos is None:
            photos = _stored_media(media)
        try:
            result = submit_report(ReportInput(
                lon=lon, lat=lat, category=service.code, description=description,
                channel="open311", contact_name=name, contact_phone=phone,
                contact_email=email, attributes=answers, photos=photos,
                within_city=jurisdiction_id, api_key_hash=key_digest(api_key),
                questions=service.attributes), None)
        except QuestionsChanged as exc:
            forget_service(new.service_code, exc.questions)
            service = service_to_file(new.service_code)
            continue
        except NotFound as exc:
            if exc.code != "city_not_found":
                raise
            raise NotFound(f"jurisdiction_id {jurisdiction_id!r} was not found.",
                           code="jurisdiction_not_found") from None
        except InvalidInput as exc:
            if exc.code == "unknown_category":  # deactivated since this process read it
                forget_service(new.service_code)
                raise DomainError("unknown_service_code",
                                  f"service_code {new.service_code.strip()!r} was not found.",
                                  ) from None
            if exc.code == "outside_named_city":
                raise DomainError("outside_jurisdiction",
                                  f"lat/long is not inside jurisdiction {jurisdiction_id!r}."
                                  ) from None
            raise
        return {"service_request_id": result.case_code, "token": result.tracking_token,
                "service_notice": _state_text(result.case_state, lang), "account_id": None}
    raise Conflict("The service's questions changed while the request was filed; send it "
                   "again.", code="questions_changed")


def request_of_token(token: str) -> dict:
    """GET tokens/{token}: the request a POST's token became."""
    from gridmgr.cases.intake import hash_token

    code = db.session.scalar(text(
        "SELECT c.code FROM reports r JOIN cases c ON c.id = r.case_id "
        "WHERE r.tracking_token_hash = :hash"), {"hash": hash_token(token)})
    if code is None:
        raise NotFound(f"token {token!r:.60} was not found.", code="token_not_found")
    return {"service_request_id": code, "token": token}


# ---------------------------------------------------------------------------------------------
# GET requests


@dataclass
class RequestQuery:
    """The filters of GET requests, already checked."""

    codes: list[str] | None
    service_codes: list[str] | None
    start: datetime
    end: datetime
    statuses: list[str] | None
    page: int
    page_size: int
    extensions: bool


def _comma_list(value: str | None) -> list[str] | None:
    items = [v.strip() for v in (value or "").split(",") if v.strip()]
    return items or None


def _positive(value: str | None, name: str, default: int, ceiling: int | None = None) -> int:
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise DomainError("invalid_number", f"{name} must be a whole number.") from None
    if number < 1:
        raise DomainError("invalid_number", f"{name} must be at least 1.")
    if ceiling is not None and number > ceiling:
        raise DomainError("invalid_number", f"{name} may be at most {ceiling}.")
    return number


def date_window(start_date: str | None, end_date: str | None) -> tuple[datetime, datetime]:
    """The start_date/end_date window: the last 90 days by default, never more than 90 days."""
    end = parse_w3c_datetime(end_date, "end_date") if end_date else None
    start = parse_w3c_datetime(start_date, "start_date") if start_date else None
    if start is None and end is None:
        end = datetime.now(UTC)
    try:
        if end is None:
            end = start + DEFAULT_WINDOW
        if start is None:
            start = end - DEFAULT_WINDOW
    except OverflowError:  # a window reaching past year 9999 or before year 1
        raise DomainError("invalid_date_range",
                          "start_date and end_date must leave a 90-day window inside the years "
                          "1 to 9999; give both.") from None
    if end < start:
        raise DomainError("invalid_date_range", "end_date is before start_date.")
    if end - start > DEFAULT_WINDOW:
        raise DomainError("invalid_date_range",
                          "start_date and end_date may not span more than 90 days.")
    return start, end


def parse_query(args) -> RequestQuery:
    """Check GET requests' query arguments (a MultiDict); any bad value is a 400."""
    statuses = _comma_list(args.get("status"))
    for status in statuses or []:
        if status.lower() not in STATUSES:
            raise DomainError("invalid_status", f"status {status!r:.40} is not open or closed.")
    start, end = date_window(args.get("start_date"), args.get("end_date"))
    limit = _positive(args.get("limit"), "limit", MAX_LIMIT, MAX_LIMIT)
    page_size = _positive(args.get("page_size"), "page_size", limit, MAX_LIMIT)
    return RequestQuery(
        codes=_comma_list(args.get("service_request_id")),
        service_codes=_comma_list(args.get("service_code")),
        start=start, end=end,
        statuses=[s.lower() for s in statuses] if statuses else None,
        page=_positive(args.get("page"), "page", 1, MAX_PAGE), page_size=page_size,
        extensions=(args.get("extensions") or "").lower() in ("true", "1", "yes"))


def _case_query():
    from gridmgr.cases.models import Case
    from gridmgr.categories.models import Category, CategoryClass
    from gridmgr.grids.models import City
    from gridmgr.people.models import Department

    # Only the columns the answer shows, as plain rows: no ORM objects per case.
    handling, responsible = aliased(Department), aliased(Department)
    return (select(Case.id, Case.code, Case.state, Case.description, Case.created_at,
                   Case.updated_at, Case.deadline, Case.city_id, Case.grid_code,
                   Case.reporter_count, Category.code.label("service_code"),
                   Category.name_zh.label("category_zh"), Category.name_en.label("category_en"),
                   City.timezone,
                   func.coalesce(handling.name, responsible.name).label("agency_zh"),
                   sql_case((handling.id.is_not(None), handling.name_en),
                        else_=responsible.name_en).label("agency_en"),
                   func.ST_X(Case.location).label("lon"), func.ST_Y(Case.location).label("lat"))
            .join(Category, Category.id == Case.category_id)
            .join(CategoryClass, CategoryClass.id == Category.class_id)
            .join(City, City.id == Case.city_id)
            .outerjoin(handling, handling.id == Case.department_id)
            .outerjoin(responsible, responsible.id == Category.department_id)
            .where(text(published_case_sql("cases"))))


def find_requests(query: RequestQuery, jurisdiction: Jurisdiction, lang: str) -> list[dict]:
    """GET requests: the cases matching ``query``, newest first, as GeoReport requests."""
    from gridmgr.cases.models import Case
    from gridmgr.categories.models import Category

    statement = _case_query()
    if jurisdiction.city_id is not None:
        statement = statement.where(Case.city_id == jurisdiction.city_id)
    if query.codes:  # ids override every other filter
        statement = statement.where(Case.code.in_(query.codes))
    else:
        statement = statement.where(Case.created_at >= query.start, Case.created_at <= query.end)
        if query.service_codes:
            statement = statement.where(
                func.upper(Category.code).in_([c.upper() for c in query.service_codes]))
        if query.statuses and set(query.statuses) != set(STATUSES):
            closed = Case.state.in_(CLOSED_STATES)
            statement = statement.where(closed if set(query.statuses) == {"closed"} else ~closed)
    statement = (statement.order_by(Case.created_at.desc(), Case.id.desc())
                 .limit(query.page_size).offset((query.page - 1) * query.page_size))
    return _serialise(db.session.execute(statement).all(), lang, query.extensions)


def find_request(code: str, jurisdiction: Jurisdiction, lang: str,
                 extensions: bool = False) -> list[dict]:
    """GET requests/{id}: the one case with this code, as a one-item list; 404 otherwise."""
    from gridmgr.cases.models import Case

    statement = _case_query().where(Case.code == code.strip())
    if jurisdiction.city_id is not None:
        statement = statement.where(Case.city_id == jurisdiction.city_id)
    rows = db.session.execute(statement).all()
    if not rows:
        raise NotFound(f"service_request_id {code!r:.40} was not found.",
                       code="request_not_found")
    return _serialise(rows, lang, extensions)


def media_url_of(sha256: str) -> str:
    from flask import url_for

    return url_for("open311.media", sha256=sha256, _external=True)


def _first_photos(case_ids: list[int]) -> dict[int, str]:
    from gridmgr.cases.models import Photo

    rows = db.session.execute(
        select(Photo.case_id, Photo.sha256).ext(distinct_on(Photo.case_id))
        .where(Photo.case_id.in_(case_ids), Photo.public.is_(True), Photo.stage == "before")
        .order_by(Photo.case_id, Photo.id)).all()
    return {r.case_id: r.sha256 for r in rows}


def _client_media(case_ids: list[int]) -> dict[int, str]:
    """The ``media_url`` a client sent with a case's first report, where it sent one."""
    from gridmgr.cases.models import Report

    rows = db.session.execute(
        select(Report.case_id, Report.attributes["_media_url"].astext.label("url"))
        .ext(distinct_on(Report.case_id))
        .where(Report.case_id.in_(case_ids), Report.attributes.has_key("_media_url"))
        .order_by(Report.case_id, Report.id)).all()
    return {r.case_id: r.url for r in rows}


def _addresses(cases) -> dict[tuple[int, str], str]:
    """Names of the unit grid and its ancestors by (city, code): the public "address"."""
    from gridmgr.grids.models import Region

    wanted = {(c.city_id, code) for c in cases for code in ancestor_codes(c.grid_code)}
    if not wanted:
        return {}
    rows = db.session.execute(select(Region.city_id, Region.code, Region.name).where(
        tuple_(Region.city_id, Region.code).in_(sorted(wanted)))).all()
    return {(r.city_id, r.code): r.name for r in rows}


def _history(case_ids: list[int]) -> dict[int, list]:
    from gridmgr.cases.models import CaseHistory

    rows = db.session.execute(select(CaseHistory.id, CaseHistory.case_id, CaseHistory.at,
                                     CaseHistory.to_state, CaseHistory.note)
                              .where(CaseHistory.case_id.in_(case_ids))
                              .order_by(CaseHistory.case_id, CaseHistory.id)).all()
    by_case: dict[int, list] = {}
    for row in rows:
        by_case.setdefault(row.case_id, []).append(row)
    return by_case


def _joined_reports(case_ids: list[int]) -> dict[int, list[datetime]]:
    from gridmgr.cases.models import Report

    rows = db.session.execute(select(Report.duplicate_of, Report.created_at)
                              .where(Report.duplicate_of.in_(case_ids))
                              .order_by(Report.created_at)).all()
    joined: dict[int, list[datetime]] = {}
    for row in rows:
        joined.setdefault(row.duplicate_of, []).append(row.created_at)
    return joined


def _status_notes(history: list, lang: str) -> str | None:
    for step in reversed(history):
        note = public_note(step.to_state, step.note)
        if note:
            return note
    return None


def _serialise(rows, lang: str, extensions: bool) -> list[dict]:
    ids = [row.id for row in rows]
    photos = _first_photos(ids) if ids else {}
    client_media = _client_media(ids) if ids else {}
    history = _history(ids) if ids else {}
    names = _addresses(rows)
    joined = _joined_reports(ids) if extensions and ids else {}
    zones: dict[str | None, ZoneInfo] = {}
    out = []
    for case in rows:
        tz = zones.get(case.timezone) or zones.setdefault(case.timezone,
                                                          ZoneInfo(case.timezone or "UTC"))
        steps = history.get(case.id, [])
        address = " ".join(names[(case.city_id, code)] for code in ancestor_codes(case.grid_code)
                           if (case.city_id, code) in names) or None
        media = photos.get(case.id)
        if lang == "zh":
            service_name, agency = case.category_zh, case.agency_zh
        else:
            service_name, agency = case.category_en, case.agency_en or case.agency_zh
        request = {
            "service_request_id": case.code,
            "status": status_of(case.state),
            "status_notes": _status_notes(steps, lang),
            "service_name": service_name,
            "service_code": case.service_code,
            "description": redact(case.description),
            "agency_responsible": agency,
            "service_notice": _state_text(case.state, lang),
            "requested_datetime": w3c_datetime(case.created_at, tz),
            "updated_datetime": w3c_datetime(case.updated_at, tz),
            "expected_datetime": w3c_datetime(case.deadline, tz),
            "address": address,
            "address_id": None,
            "zipcode": None,
            "lat": public_coordinate(case.lat),
            "long": public_coordinate(case.lon),
            "media_url": media_url_of(media) if media else client_media.get(case.id),
        }
        if extensions:
            request["extended_attributes"] = {
                "state": case.state,
                "grid_code": case.grid_code,
                "reporter_count": case.reporter_count,
                "duplicates": [{"requested_datetime": w3c_datetime(at, tz)}
                               for at in joined.get(case.id, [])],
                "notes": [{"update_id": str(step.id),
                           "datetime": w3c_datetime(step.at, tz),
                           "state": step.to_state,
                           "description": public_note(step.to_state, step.note)
                           or _state_text(step.to_state, lang)}
                          for step in steps],
            }
        out.append(request)
    return out


# ---------------------------------------------------------------------------------------------
# GET servicerequestupdates (the widely used extension)


def find_updates(args, jurisdiction: Jurisdiction, lang: str) -> list[dict]:
    """Every step of every case in the start_date/end_date window (by the step's time), oldest
    first: update_id, service_request_id, status, updated_datetime, description, media_url."""
    from gridmgr.cases.models import Case, CaseHistory, Photo
    from gridmgr.grids.models import City

    start, end = date_window(args.get("start_date"), args.get("end_date"))
    limit = _positive(args.get("limit"), "limit", MAX_LIMIT, MAX_LIMIT)
    page_size = _positive(args.get("page_size"), "page_size", limit, MAX_LIMIT)
    page = _positive(args.get("page"), "page", 1, MAX_PAGE)
    photo = (select(Photo.sha256).where(Photo.history_id == CaseHistory.id,
                                        Photo.public.is_(True))
             .order_by(Photo.id).limit(1).scalar_subquery())
    statement = (select(CaseHistory, Case.code, City.timezone, photo.label("sha256"))
                 .join(Case, Case.id == CaseHistory.case_id)
                 .join(City, City.id == Case.city_id)
                 .where(CaseHistory.at >= start, CaseHistory.at <= end,
                        text(published_case_sql("cases"))))
    if jurisdiction.city_id is not None:
        statement = statement.where(Case.city_id == jurisdiction.city_id)
    codes = _comma_list(args.get("service_request_id"))
    if codes:
        statement = statement.where(Case.code.in_(codes))
    statement = (statement.order_by(CaseHistory.at, CaseHistory.id)
                 .limit(page_size).offset((page - 1) * page_size))
    updates = []
    for row in db.session.execute(statement):
        step = row.CaseHistory
        note = public_note(step.to_state, step.note)
        updates.append({
            "update_id": str(step.id),
            "service_request_id": row.code,
            "status": status_of(step.to_state),
            "updated_datetime": w3c_datetime(step.at, ZoneInfo(row.timezone or "UTC")),
            "description": note or _state_text(step.to_state, lang),
            "media_url": media_url_of(row.sha256) if row.sha256 else None,
        })
    return updates
