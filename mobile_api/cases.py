"""Cases over HTTP: lists, one case with its history, the steps of the loop, the caller's
tasks and the delta a phone syncs. Every rule lives in ``gridmgr.cases``."""

from __future__ import annotations

import functools
import math
import time

from flask import Response, current_app, jsonify, request
from flask_smorest import Blueprint
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter
from marshmallow import EXCLUDE, Schema, fields, validate
from redis.exceptions import RedisError

from gridmgr.calendar.deadlines import CLOCK_STAGES, COLOURS, UNITS, YELLOW_FROM
from gridmgr.cases import idempotency
from gridmgr.cases.models import STATES
from gridmgr.cases.queries import (
    case_detail,
    list_cases,
    nearby_open_cases,
    sync_delta,
    tasks_for,
)
from gridmgr.cases.steps import AWAITED, GUARDS, NEEDS, ON_REQUEST, TABLE, endpoint_doc
from gridmgr.cases.workflow import STEPS, StepInput, take_step
from gridmgr.errors import Conflict, RateLimited, Sentence
from gridmgr.extensions import limiter
from gridmgr.geo.coords import COORD_SYSTEMS
from mobile_api.auth import auth_optional, auth_required, current_user
from mobile_api.http import document_errors, read_body, refuse_invalid_url_text, store_uploads

blp = Blueprint("cases", __name__, description="Cases around the closed loop")
blp.before_request(refuse_invalid_url_text)


def case_list(body: dict) -> Response:
    """A list body that ``gridmgr.cases.queries`` already built in its documented shape, as
    JSON. flask-smorest passes a response through untouched, so the schema still documents it,
    but marshmallow does not copy every field of every case a second time: 14 ms of a sync of
    500 cases."""
    return jsonify(body)

CLOCKS = ("green", "yellow", "red", "paused")
MAX_INT = 2**62


class CaseListQuery(Schema):
    state = fields.List(fields.String(validate=validate.OneOf(STATES)),
                        metadata={"description": "one or more states"})
    category = fields.String(validate=validate.Length(1, 32))
    region = fields.String(validate=validate.Regexp(r"^[0-9]{1,15}$"),
                           metadata={"description": "region code prefix (district … grid)"})
    clock = fields.String(validate=validate.OneOf(CLOCKS))
    since = fields.AwareDateTime(metadata={"description": "changed at or after"})
    cursor = fields.String(validate=validate.Length(1, 64))
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))
    city = fields.String(validate=validate.Length(1, 64),
                         metadata={"description": "city slug, for platform-wide users"})


class NearbyCasesQuery(Schema):
    lon = fields.Float(required=True, allow_nan=False, validate=validate.Range(-180, 180))
    lat = fields.Float(required=True, allow_nan=False, validate=validate.Range(-90, 90))
    coord_sys = fields.String(load_default="wgs84", validate=validate.OneOf(COORD_SYSTEMS))
    category = fields.String(required=True, validate=validate.Length(1, 32))


class CaseSyncQuery(Schema):
    since = fields.String(validate=validate.Length(1, 200), metadata={
        "description": "an ISO time with zone, or the `next` of the previous answer"})
    limit = fields.Integer(load_default=500, validate=validate.Range(1, 1000))


class StageClockSchema(Schema):
    stage = fields.String(required=True, metadata={
        "description": "the stage whose clock runs now: " + ", ".join(CLOCK_STAGES)})
    deadline = fields.String(allow_none=True)
    colour = fields.String(allow_none=True, metadata={
        "description": "{}, {} (from {:.0%} of the limit up to the deadline), {} (after the "
                       "deadline), {} (shelved), or null: the stage has no limit".format(
                           *COLOURS[:2], YELLOW_FROM, *COLOURS[2:])})


class AvailableActionSchema(Schema):
    action = fields.String(required=True, metadata={
        "description": "the step endpoint: POST /cases/{id}/<action>"})
    records = fields.String(required=True, metadata={
        "description": "the workflow table's row it records (extend_requested for a receiver "
                       "who asks)"})
    needs = fields.List(fields.String(), required=True, metadata={
        "description": "what the request must carry: " + ", ".join(NEEDS)})


class CaseSummarySchema(Schema):
    id = fields.Integer(required=True)
    code = fields.String(required=True)
    state = fields.String(required=True, validate=validate.OneOf(STATES))
    source = fields.String(required=True)
    channel = fields.String(required=True)
    category = fields.String(required=True)
    category_name = fields.String(required=True)
    grid_code = fields.String(required=True)
    lon = fields.Float(required=True)
    lat = fields.Float(required=True)
    description = fields.String(allow_none=True)
    department_id = fields.Integer(allow_none=True)
    worker_id = fields.Integer(allow_none=True)
    deadline = fields.String(allow_none=True)
    clock = fields.String(allow_none=True)
    stage_clock = fields.Nested(StageClockSchema, allow_none=True)
    reporter_count = fields.Integer(required=True)
    rework_count = fields.Integer(required=True)
    extension_count = fields.Integer(required=True)
    rating = fields.Integer(allow_none=True)
    has_request = fields.Boolean(required=True)
    created_at = fields.String(required=True)
    updated_at = fields.String(required=True)
    version = fields.Integer(required=True)
    available_actions = fields.List(fields.Nested(AvailableActionSchema), required=True, metadata={
        "description": "what the caller may do to this case now (docs/workflow.md)"})


class CasePageSchema(Schema):
    items = fields.List(fields.Nested(CaseSummarySchema), required=True)
    next_cursor = fields.String(allow_none=True)


class CaseHistorySchema(Schema):
    id = fields.Integer(required=True)
    actor_id = fields.Integer(allow_none=True)
    actor_role = fields.String(allow_none=True)
    action = fields.String(required=True)
    from_state = fields.String(allow_none=True)
    to_state = fields.String(required=True)
    at = fields.String(required=True)
    lon = fields.Float(allow_none=True)
    lat = fields.Float(allow_none=True)
    note = fields.String(allow_none=True)
    details = fields.Dict(required=True)
    photos = fields.List(fields.String(), required=True)


class CasePhotoSchema(Schema):
    sha256 = fields.String(required=True)
    mime = fields.String(required=True)
    width = fields.Integer(required=True)
    height = fields.Integer(required=True)
    stage = fields.String(required=True)
    history_id = fields.Integer(allow_none=True)
    report_id = fields.Integer(allow_none=True)
    url = fields.String(allow_none=True)
    thumbnail_url = fields.String(required=True)
    original_url = fields.String(allow_none=True, metadata={
        "description": "only for the uploader and staff who may see private details"})


class ReporterContactSchema(Schema):
    id = fields.Integer(required=True)
    reporter_id = fields.Integer(allow_none=True)
    channel = fields.String(required=True)
    description = fields.String(allow_none=True)
    lon = fields.Float(allow_none=True)
    lat = fields.Float(allow_none=True)
    contact_name = fields.String(allow_none=True)
    contact_phone = fields.String(allow_none=True)
    contact_email = fields.String(allow_none=True)
    created_at = fields.String(required=True)


class CaseDetailSchema(CaseSummarySchema):
    handler_id = fields.Integer(allow_none=True)
    verified_by_id = fields.Integer(allow_none=True)
    deadlines = fields.Dict(required=True)
    dispatched_at = fields.String(allow_none=True)
    accepted_at = fields.String(allow_none=True)
    handled_at = fields.String(allow_none=True)
    closed_at = fields.String(allow_none=True)
    paused_at = fields.String(allow_none=True)
    pending_request = fields.Dict(allow_none=True)
    return_count = fields.Integer(required=True)
    rating_note = fields.String(allow_none=True)
    photos = fields.List(fields.Nested(CasePhotoSchema), required=True)
    history = fields.List(fields.Nested(CaseHistorySchema), required=True)
    reports = fields.List(fields.Nested(ReporterContactSchema), metadata={
        "description": "reports with their reporters' details: every report for staff who may "
                       "see private details, a citizen's own reports for that citizen"})


class DuplicateCaseSchema(Schema):
    id = fields.Integer(required=True)
    code = fields.String(required=True)
    state = fields.String(required=True)
    distance_m = fields.Float(required=True)
    reporter_count = fields.Integer(required=True)
    created_at = fields.String(required=True)


class NearbyCasesSchema(Schema):
    category = fields.String(required=True)
    radius_m = fields.Float(required=True)
    window_hours = fields.Float(required=True)
    items = fields.List(fields.Nested(DuplicateCaseSchema), required=True)


class CaseTaskSchema(Schema):
    action = fields.String(required=True)
    case = fields.Nested(CaseSummarySchema, required=True)


class CaseTaskListSchema(Schema):
    items = fields.List(fields.Nested(CaseTaskSchema), required=True)


class CaseSyncSchema(Schema):
    items = fields.List(fields.Nested(CaseSummarySchema), required=True)
    next = fields.String(allow_none=True, metadata={"description": "pass back as `since`"})
    more = fields.Boolean(required=True)


class CaseStepResultSchema(Schema):
    id = fields.Integer(required=True)
    code = fields.String(required=True)
    state = fields.String(required=True)
    action = fields.String(required=True)
    history_id = fields.Integer(required=True)
    version = fields.Integer(required=True)
    deadline = fields.String(allow_none=True)
    available_actions = fields.List(fields.Nested(AvailableActionSchema), required=True)


class CaseStepSchema(Schema):
    """Everything a step may carry; each action reads what it needs."""

    class Meta:
        unknown = EXCLUDE

    note = fields.String(validate=validate.Length(max=4000))
    lon = fields.Float(allow_nan=False, validate=validate.Range(-180, 180),
                       metadata={"description": "where the actor is (on-site steps)"})
    lat = fields.Float(allow_nan=False, validate=validate.Range(-90, 90))
    coord_sys = fields.String(load_default="wgs84", validate=validate.OneOf(COORD_SYSTEMS))
    department = fields.String(validate=validate.Length(1, 200),
                               metadata={"description": "dispatch: department id or name"})
    worker = fields.String(validate=validate.Length(1, 150),
                           metadata={"description": "dispatch: worker id or username"})
    category = fields.String(validate=validate.Length(1, 32),
                             metadata={"description": "file: correct the category"})
    amount = fields.Float(allow_nan=False, validate=validate.Range(0, 10_000, min_inclusive=False),
                          metadata={"description": "extend: how much more time"})
    unit = fields.String(validate=validate.OneOf(UNITS))
    deadline = fields.AwareDateTime(metadata={"description": "extend: the new deadline"})
    passed = fields.Boolean(metadata={"description": "check: false sends it back for rework"})
    valid = fields.Boolean(metadata={"description": "verify: false cancels a false report"})
    rating = fields.Integer(strict=True, validate=validate.Range(1, 5))
    into = fields.Integer(strict=True, validate=validate.Range(1, 2**62), metadata={
        "description": "merge: the id of the open case that carries the report on"})


CASE_STEP_SCHEMA = CaseStepSchema()  # stateless when loading: one for every request


class CaseStepFormSchema(CaseStepSchema):
    photos = fields.List(fields.Raw(metadata={"type": "string", "format": "binary"}))


@blp.route("/cases")
@auth_required
@blp.arguments(CaseListQuery, location="query")
@blp.response(200, CasePageSchema)
@document_errors(blp, 403, 404, 422, notes={403: "forbidden: another city than yours",
                                             404: "unknown_city",
                                             422: "invalid_input, bad_cursor"})
def get_cases(query):
    """Cases the caller may see, newest first, filtered; cursor pagination."""
    return case_list(list_cases(current_user(), **query))


@blp.route("/cases/nearby")
@auth_optional
@blp.arguments(NearbyCasesQuery, location="query")
@blp.response(200, NearbyCasesSchema)
@document_errors(blp, 422, notes={422: "invalid_input, unknown_category"})
def get_nearby(query):
    """Open cases of a category within its duplicate radius and window: "the same problem?"."""
    from gridmgr.geo.coords import to_wgs84

    lon, lat = to_wgs84(query["lon"], query["lat"], query["coord_sys"])
    return nearby_open_cases(lon, lat, query["category"])


@blp.route("/cases/<int:case_id>")
@auth_required
@blp.response(200, CaseDetailSchema)
@document_errors(blp, 404, 422, notes={404: "case_not_found"})
def get_case(case_id):
    """One case as the caller may see it: all of it for staff; for a citizen who reported or
    joined it, their own reports and the public view of the rest (no staff ids, notes or
    on-site points; public photo copies; point rounded, description redacted)."""
    return case_detail(case_id, current_user())


@blp.route("/tasks")
@auth_required
@blp.doc(description="Each item names the step it waits for: " + ", ".join(
    a.name for a in TABLE if a.task == AWAITED) + "; or approve, a receiver's request to "
    + " or ".join(a.name for a in TABLE if a.task == ON_REQUEST) + " (docs/workflow.md).")
@blp.response(200, CaseTaskListSchema)
@document_errors(blp, 422)
def get_tasks():
    """What the caller must do now, oldest case first (the workflow table's tasks)."""
    return case_list(tasks_for(current_user()))


@blp.route("/sync")
@auth_required
@blp.arguments(CaseSyncQuery, location="query")
@blp.response(200, CaseSyncSchema)
@document_errors(blp, 422, notes={422: "invalid_input, bad_since"})
def get_sync(query):
    """Cases in the caller's view changed since a time or cursor, oldest change first."""
    return case_list(sync_delta(current_user(), query.get("since"), query["limit"]))




class StepLimit:
    """``GRIDMGR_STEP_RATE_LIMIT`` per signed-in user, over every step together, counted in the
    limiter's storage (Redis when configured: shared by all server processes). If Redis fails,
    the count goes on in this process's memory: an outage never fails a step."""

    def __init__(self) -> None:
        self._memory = FixedWindowRateLimiter(MemoryStorage())  # while Redis fails
        self._configured: tuple[object, FixedWindowRateLimiter] | None = None

    def count(self, user) -> None:
        """Count a step of ``user``; over the limit, 429 ``too_many_requests`` with
        Retry-After."""
        config = current_app.config
        if not config["RATELIMIT_ENABLED"]:
            return
        limit = _parsed(config["GRIDMGR_STEP_RATE_LIMIT"])
        who = str(user.id)
        strategy = self._local(limiter.storage)
        try:
            allowed = strategy.hit(limit, "case_steps", who)
        except RedisError:
            strategy = self._memory
            allowed = strategy.hit(limit, "case_steps", who)
        if not allowed:
            reset = strategy.get_window_stats(limit, "case_steps", who).reset_time
            raise RateLimited(Sentence("Too many steps from this user: %(limit)s.",
                                       limit=str(limit)),
                              retry_after=max(1, math.ceil(reset - time.time())))

    def _local(self, storage) -> FixedWindowRateLimiter:
        if self._configured is None or self._configured[0] is not storage:
            self._configured = (storage, FixedWindowRateLimiter(storage))
        return self._configured[1]


@functools.lru_cache(maxsize=8)
def _parsed(limit: str) -> RateLimitItem:
    return parse(limit)


STEP_LIMIT = StepLimit()
IDEMPOTENCY_HEADER = {
    "in": "header", "name": "Idempotency-Key", "required": False, "schema": {
        "type": "string", "pattern": idempotency.KEY_PATTERN.pattern},
    "description": "made by the client for this step: sent again, the step is not taken twice "
                   "and the answer is the first one"}


def _step_view(action: str):
    def view(case_id):
        # Counted, then the body read and the photos checked from their headers; they are
        # decoded and written only once the step is allowed (gridmgr.cases.photos).
        user = current_user()
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return take(user, case_id)
        earlier = idempotency.earlier_answer(user.id, idempotency.check_key(key), case_id, action)
        if earlier is not None:  # sent again: the first answer, nothing taken twice
            return earlier
        try:
            answer = take(user, case_id)
        except Conflict:  # a copy sent at the same moment may have taken it: its answer
            earlier = idempotency.answer_kept_meanwhile(user.id, key, case_id, action)
            if earlier is None:
                raise
            return earlier
        idempotency.keep_answer(user.id, key, case_id, action, answer)
        return answer

    def take(user, case_id):
        STEP_LIMIT.count(user)
        data, files = read_body(CASE_STEP_SCHEMA)
        photos = store_uploads(files)
        return take_step(case_id, action, user, StepInput(photos=photos, **data))

    view.__name__ = f"case_{action}"
    view.__doc__ = endpoint_doc(action)
    return view


for _action in STEPS:
    blp.route(f"/cases/<int:case_id>/{_action}", methods=["POST"])(
        limiter.counts_itself(  # with STEP_LIMIT
            auth_required(
                blp.doc(parameters=[IDEMPOTENCY_HEADER], requestBody={
                    "required": False, "content": {
                    "application/json": {"schema": CaseStepSchema},
                    "multipart/form-data": {"schema": CaseStepFormSchema}}})(
                    blp.response(200, CaseStepResultSchema)(
                        document_errors(blp, 400, 404, 409, 413, 415, 422, 429, notes={
                            404: "case_not_found",
                            409: "conflict (the case moved meanwhile or is not in a state for "
                                 "this step), " + ", ".join(GUARDS) + ", …",
                            422: "invalid_input, too_far, photo_required, note_required, "
                                 "location_required, bad_extension, bad_rating, "
                                 "bad_idempotency_key, idempotency_key_reused, …",
                            429: "too_many_requests: steps are rate limited per user"})(
                            _step_view(_action)))))))
