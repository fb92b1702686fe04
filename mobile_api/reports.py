"""Intake over HTTP: ``POST /api/v1/reports`` (JSON or multipart with photos), the public
status behind a tracking token, and photos by hash."""

from __future__ import annotations

import functools
import json
import math
import time

from flask import current_app, request, send_file
from flask_limiter.util import get_remote_address
from flask_smorest import Blueprint
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import FixedWindowRateLimiter
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate
from redis.exceptions import RedisError
from werkzeug.datastructures import FileStorage

from gridmgr.cases.intake import ReportInput, refuse_invalid_text, submit_report
from gridmgr.cases.models import CHANNELS
from gridmgr.cases.photos import photo_file, store_photo
from gridmgr.cases.queries import tracked_report
from gridmgr.errors import InvalidInput, NotFound, RateLimited, Sentence
from gridmgr.extensions import limiter
from gridmgr.geo.coords import COORD_SYSTEMS
from gridmgr.shared_counts import BatchedWindowCounts
from mobile_api.auth import auth_optional, current_user
from mobile_api.json_bodies import json_answer, quick_load, refuse_deep_json

blp = Blueprint("reports", __name__, description="Reports from citizens and inspectors")

MAX_PHOTOS = 9
ERRORS = {
    400: "malformed_json: the body is not valid JSON",
    413: "photo_too_large, photo_too_many_pixels (decoded size over the budget), "
         "request_entity_too_large",
    415: "bad_photo: an upload is not a readable JPEG/PNG/HEIC image",
    422: "invalid_input, outside_city, unknown_category, location_required, ...",
    429: "too_many_requests: public intake is rate limited",
}


class RefusalBody(Schema):
    code = fields.String(required=True)
    message = fields.String(required=True)
    details = fields.Dict()


class RefusalSchema(Schema):
    error = fields.Nested(RefusalBody, required=True)


def documentation_only(*decorators):
    """flask-smorest's ``alt_response`` and ``doc``, applied for what they document alone.

    Each also wraps the view in a function that only calls it, through ``ensure_sync`` (a
    coroutine check): the intake route went through eight such layers per request. Their
    documentation is kept on the view itself (``_apidoc``, which they copy and extend), and the
    view is returned unwrapped."""
    def decorator(view):
        documented = view
        for document in reversed(decorators):
            documented = document(documented)
        view._apidoc = documented._apidoc
        return view
    return decorator


def document_errors(blp_: Blueprint, *statuses: int, notes: dict | None = None):
    """``alt_response`` for each error status, all with the error body (documentation only)."""
    return documentation_only(*(
        blp_.alt_response(status, schema=RefusalSchema, description=(notes or {}).get(status)
                          or ERRORS.get(status) or "error")
        for status in statuses))


def refuse_nul_characters() -> None:
    """The path and the query under :func:`refuse_invalid_text` (NUL, which PostgreSQL text
    cannot hold, among the refused characters); the body's fields are checked by
    :func:`read_body`."""
    url = {"path": request.path}
    if request.query_string:
        url.update((f"query {name}", value) for name, value in request.args.items(multi=True))
    refuse_invalid_text(url)


blp.before_request(refuse_nul_characters)


def read_body(schema: Schema) -> tuple[dict, list[FileStorage]]:
    """The request's fields (JSON object or multipart form) validated by ``schema`` (a plain
    JSON body by its :func:`quick_load` first), and the uploaded ``photos`` parts;
    400 ``malformed_json``, 422 ``invalid_input`` or ``invalid_text``."""
    files: list[FileStorage] = []
    if request.mimetype == "multipart/form-data" or request.mimetype == (
            "application/x-www-form-urlencoded"):
        raw = {k: v for k, v in request.form.items()}
        if isinstance(raw.get("attributes"), str):
            refuse_deep_json(raw["attributes"])
            try:
                raw["attributes"] = json.loads(raw["attributes"])
            except ValueError:
                raise InvalidInput("attributes must be a JSON object.",
                                   code="invalid_input") from None
        files = [f for f in request.files.getlist("photos") if f.filename or f.content_length]
    elif request.mimetype == "application/json" and (
            data := quick_load(schema).load(request.get_data(cache=True))) is not None:
        refuse_invalid_text(data)
        return data, files
    else:
        raw = request.get_json(silent=True)
        if raw is None:
            if request.get_data(cache=True).strip():
                raise InvalidInput("The body is not valid JSON.", code="malformed_json",
                                   status=400)
            raw = {}
        if not isinstance(raw, dict):
            raise InvalidInput("The body must be a JSON object.", code="malformed_json",
                               status=400)
    try:
        data = schema.load(raw)
    except ValidationError as exc:
        raise InvalidInput("The request body is not valid.", code="invalid_input",
                           fields=exc.messages) from None
    refuse_invalid_text(data)
    if len(files) > MAX_PHOTOS:
        raise InvalidInput(f"At most {MAX_PHOTOS} photos per request.", code="too_many_photos")
    return data, files


def store_uploads(files: list[FileStorage]):
    """Check every uploaded photo from its size and header (413 ``photo_too_large`` or
    ``photo_too_many_pixels``, 415 ``bad_photo``). Nothing is decoded or written here: that
    happens when the case accepts them, so a refused request leaves no file."""
    try:
        return [store_photo(f.read(), f.filename) for f in files]
    finally:
        for f in files:
            f.close()


class ReportSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    lon = fields.Float(allow_nan=False, validate=validate.Range(-180, 180),
                       metadata={"description": "longitude (required unless a photo has GPS)"})
    lat = fields.Float(allow_nan=False, validate=validate.Range(-90, 90))
    coord_sys = fields.String(load_default="wgs84", validate=validate.OneOf(COORD_SYSTEMS))
    category = fields.String(validate=validate.Length(1, 32),
                             metadata={"description": "category code, e.g. C0101 or E0101"})
    description = fields.String(validate=validate.Length(max=4000))
    channel = fields.String(load_default="app", validate=validate.OneOf(CHANNELS))
    client_id = fields.String(validate=[validate.Length(1, 64),
                                        validate.Regexp(r"^[A-Za-z0-9._:\-]+$")],
                              metadata={"description": "made by the client; resending is safe"})
    duplicate_of = fields.Integer(strict=True, validate=validate.Range(1, 2**62),
                                  metadata={"description": "join this open case"})
    contact_name = fields.String(validate=validate.Length(max=200))
    contact_phone = fields.String(validate=validate.Length(max=50))
    contact_email = fields.Email(validate=validate.Length(max=254))
    attributes = fields.Dict(keys=fields.String(validate=validate.Length(max=100)))


# Loading keeps no state in the schema: one instance serves every request (a new one per
# request would deep-copy its fields each time).
REPORT_SCHEMA = ReportSchema()


class ReportFormSchema(ReportSchema):
    photos = fields.List(fields.Raw(metadata={"type": "string", "format": "binary"}),
                         metadata={"description": f"up to {MAX_PHOTOS} JPEG/PNG photos"})


class DuplicateCaseSchema(Schema):
    id = fields.Integer(required=True)
    code = fields.String(required=True)
    state = fields.String(required=True)
    distance_m = fields.Float(required=True)
    reporter_count = fields.Integer(required=True)
    created_at = fields.String(required=True)


class ReportIdsSchema(Schema):
    id = fields.Integer(required=True)
    case_id = fields.Integer(required=True)


class CaseIdsSchema(Schema):
    id = fields.Integer(required=True)
    code = fields.String(required=True)
    state = fields.String(required=True)


class ReportAnswerSchema(Schema):
    report = fields.Nested(ReportIdsSchema, required=True)
    case = fields.Nested(CaseIdsSchema, required=True)
    created = fields.Boolean(required=True, metadata={
        "description": "false when this client_id was already received (nothing new stored)"})
    tracking_token = fields.String(metadata={
        "description": "anonymous reports only, returned once: keep it to follow the report"})
    possible_duplicates = fields.List(fields.Nested(DuplicateCaseSchema), required=True)


class TrackedStepSchema(Schema):
    action = fields.String(required=True)
    state = fields.String(required=True)
    at = fields.String(required=True)


class TrackedCaseSchema(Schema):
    code = fields.String(required=True)
    state = fields.String(required=True)
    category = fields.String(required=True)
    category_name = fields.String(required=True)
    updated_at = fields.String(required=True)
    closed_at = fields.String(allow_none=True)
    reporter_count = fields.Integer(required=True)


class TrackedReportSchema(Schema):
    report_id = fields.Integer(required=True)
    reported_at = fields.String(required=True)
    case = fields.Nested(TrackedCaseSchema, required=True)
    steps = fields.List(fields.Nested(TrackedStepSchema), required=True)


class PhotoSizeQuery(Schema):
    size = fields.String(load_default="public",
                         validate=validate.OneOf(("public", "thumb", "original")))


class IntakeLimit:
    """The public intake limit, ``GRIDMGR_INTAKE_RATE_LIMIT`` per client address.

    With Redis as the limiter's storage, the count is shared by every server process and added
    to Redis in batches (:mod:`gridmgr.shared_counts`): a round trip per report cost about a
    tenth of the machine's CPU, and an address far from its limit needs no exact count at every
    report. Other storages (memory) are counted with ``limits`` directly. If Redis fails, the
    count goes on in this process's memory: an outage never fails a report, and the limit still
    holds."""

    def __init__(self) -> None:
        self._counts = BatchedWindowCounts("gridmgr/intake")
        self._memory = FixedWindowRateLimiter(MemoryStorage())  # while Redis fails
        self._configured: tuple[object, FixedWindowRateLimiter] | None = None

    def count(self) -> None:
        """Count this request; over the limit, 429 ``too_many_requests`` with Retry-After."""
        config = current_app.config
        if not config.get("RATELIMIT_ENABLED", True):
            return
        limit = _parsed(config.get("GRIDMGR_INTAKE_RATE_LIMIT", "60 per minute"))
        address = get_remote_address()
        storage = limiter.storage
        if isinstance(storage, RedisStorage):
            try:
                hit = self._counts.hit(storage.storage, limit, address,
                                       config["GRIDMGR_INTAKE_LIMIT_FLUSH_SECONDS"])
            except RedisError:
                pass
            else:
                if hit.used > limit.amount:
                    raise RateLimited(Sentence("Too many reports from this address: "
                                               "%(limit)s.", limit=str(limit)),
                                      retry_after=hit.retry_after())
                return
        strategy = self._memory if isinstance(storage, RedisStorage) else self._local(storage)
        if not strategy.hit(limit, "intake", address):
            reset = strategy.get_window_stats(limit, "intake", address).reset_time
            raise RateLimited(Sentence("Too many reports from this address: %(limit)s.",
                                       limit=str(limit)),
                              retry_after=max(1, math.ceil(reset - time.time())))

    def _local(self, storage) -> FixedWindowRateLimiter:
        if self._configured is None or self._configured[0] is not storage:
            self._configured = (storage, FixedWindowRateLimiter(storage))
        return self._configured[1]


@functools.lru_cache(maxsize=8)
def _parsed(limit: str) -> RateLimitItem:
    return parse(limit)


INTAKE_LIMIT = IntakeLimit()


@blp.route("/reports", methods=["POST"])
@limiter.counts_itself  # with INTAKE_LIMIT
@auth_optional
@documentation_only(
    blp.doc(requestBody={"required": True, "content": {
        "application/json": {"schema": ReportSchema},
        "multipart/form-data": {"schema": ReportFormSchema}}}))
@blp.response(201, ReportAnswerSchema, description="a new report (and case, unless joined)")
@documentation_only(blp.alt_response(
    200, schema=ReportAnswerSchema,
    description="this client_id was received before: the same report"))
@document_errors(blp, 400, 404, 409, 413, 415, 422, 429, notes={
    404: "case_not_found: duplicate_of names no case",
    409: "case_not_open: duplicate_of names a closed or cancelled case; client_id_reused: "
         "this client_id was used for a report that says something else",
    413: "attributes_too_large, photo_too_large, request_entity_too_large",
    422: "invalid_text: a field holds a control character; attributes_too_deep, "
         "too_many_attributes, attribute_too_long; invalid_input, outside_city, ..."})
def post_report():
    """Report a problem: located in its unit grid, stored once per client_id."""
    INTAKE_LIMIT.count()
    data, files = read_body(REPORT_SCHEMA)
    photos = store_uploads(files)  # written only if the report is stored
    result = submit_report(ReportInput(photos=photos, **data), current_user())
    # Already in the documented shape: as JSON directly, not copied again by the schema.
    return json_answer(result.to_dict(), 201 if result.created else 200)


@blp.route("/reports/track/<token>")
@blp.response(200, TrackedReportSchema)
@document_errors(blp, 404, 422, notes={404: "report_not_found"})
def track_report(token):
    """The public status of an anonymous report, by the tracking token it was given."""
    if len(token) > 128:
        raise NotFound("No report has this tracking token.", code="report_not_found")
    return tracked_report(token)


@blp.route("/photos/<sha256>")
@auth_optional
@blp.arguments(PhotoSizeQuery, location="query")
@blp.response(200, description="the image (public copy without EXIF, thumbnail, or original)",
              content_type="image/jpeg")
@document_errors(blp, 401, 403, 404, 422, notes={
    401: "token_missing: originals need a signed-in staff member",
    403: "forbidden: originals are for staff who may see private details",
    404: "photo_not_found"})
def get_photo(query, sha256):
    """A stored photo by its SHA-256: public copy, thumbnail or (staff only) the original."""
    path, mime = photo_file(sha256, query["size"], current_user())
    if not path.exists():
        raise NotFound("No photo has this hash.", code="photo_not_found")
    return send_file(path, mimetype=mime, max_age=86400)
