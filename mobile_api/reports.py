"""Intake over HTTP: ``POST /api/v1/reports`` (JSON or multipart with photos), the public
status behind a tracking token, and photos by hash."""

from __future__ import annotations

import functools
import math
import time

from flask import current_app, send_file
from flask_limiter.util import get_remote_address
from flask_smorest import Blueprint
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import FixedWindowRateLimiter
from marshmallow import EXCLUDE, Schema, fields, validate
from redis.exceptions import RedisError

from gridmgr.cases import tracking
from gridmgr.cases.intake import ReportInput, submit_report
from gridmgr.cases.models import CHANNELS
from gridmgr.cases.photos import photo_file
from gridmgr.cases.queries import tracked_report
from gridmgr.errors import NotFound, RateLimited, Sentence
from gridmgr.extensions import limiter
from gridmgr.geo.coords import COORD_SYSTEMS
from gridmgr.people.models import User
from gridmgr.shared_counts import BatchedWindowCounts
from mobile_api.auth import auth_optional, current_user
from mobile_api.cases import CaseStepResultSchema, DuplicateCaseSchema
from mobile_api.http import (
    MAX_PHOTOS,
    document_errors,
    documentation_only,
    json_answer,
    read_body,
    refuse_invalid_url_text,
    store_uploads,
)

blp = Blueprint("reports", __name__, description="Reports from citizens and inspectors")
blp.before_request(refuse_invalid_url_text)

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
    component = fields.String(validate=validate.Regexp(r"^[0-9]{16}$"), metadata={
        "description": "the 16-digit code of the component (部件) the problem is at: its "
                       "category and place when they are not given; its owner receives the "
                       "case"})


# Loading keeps no state in the schema: one instance serves every request (a new one per
# request would deep-copy its fields each time).
REPORT_SCHEMA = ReportSchema()


class ReportFormSchema(ReportSchema):
    photos = fields.List(fields.Raw(metadata={"type": "string", "format": "binary"}),
                         metadata={"description": f"up to {MAX_PHOTOS} JPEG/PNG photos"})


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


class TrackedPhotoSchema(Schema):
    sha256 = fields.String(required=True)
    stage = fields.String(required=True, metadata={"description": "before or after the work"})
    width = fields.Integer(required=True)
    height = fields.Integer(required=True)
    url = fields.String(required=True)
    thumbnail_url = fields.String(required=True)


class CarrierSchema(Schema):
    code = fields.String(required=True, metadata={"description": "the case carrying the report"})
    merged_from = fields.String(required=True, metadata={
        "description": "the case the report was first made in (cancelled by the merge)"})
    tracking_link = fields.String(required=True)


class TrackedReportSchema(Schema):
    report_id = fields.Integer(required=True)
    reported_at = fields.String(required=True)
    case = fields.Nested(TrackedCaseSchema, required=True)
    steps = fields.List(fields.Nested(TrackedStepSchema), required=True)
    photos = fields.List(fields.Nested(TrackedPhotoSchema), required=True,
                         metadata={"description": "the case's public photos, after-photos too"})
    rating = fields.Integer(allow_none=True)
    carried_by = fields.Nested(CarrierSchema, allow_none=True, metadata={
        "description": "set when the report was merged into another case, which it follows "
                       "now"})


class TrackedRatingSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    rating = fields.Integer(required=True, strict=True, validate=validate.Range(1, 5))
    note = fields.String(validate=validate.Length(max=4000))


class PhotoSizeQuery(Schema):
    size = fields.String(load_default="public",
                         validate=validate.OneOf(("public", "thumb", "original")))


class IntakeLimit:
    """The intake limit, ``GRIDMGR_INTAKE_RATE_LIMIT`` per signed-in user, and per client
    address for anonymous reports. The inspectors of a city often reach the server through one
    gateway address: counted by address, a handful of them would share one limit. The user is
    the one the request's token already named (:func:`current_user`, resolved once per
    request): counting by user reads nothing more.

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

    def count(self, user: User | None) -> None:
        """Count a report of ``user`` (None: anonymous, counted by address); over the limit,
        429 ``too_many_requests`` with Retry-After."""
        config = current_app.config
        if not config["RATELIMIT_ENABLED"]:
            return
        limit = _parsed(config["GRIDMGR_INTAKE_RATE_LIMIT"])
        # An address never starts with "user:": the two kinds of key cannot meet.
        address = f"user:{user.id}" if user is not None else get_remote_address()
        refusal = ("Too many reports from this user: %(limit)s." if user is not None
                   else "Too many reports from this address: %(limit)s.")
        storage = limiter.storage
        if isinstance(storage, RedisStorage):
            try:
                hit = self._counts.hit(storage.storage, limit, address,
                                       config["GRIDMGR_INTAKE_LIMIT_FLUSH_SECONDS"])
            except RedisError:
                pass
            else:
                if hit.used > limit.amount:
                    raise RateLimited(Sentence(refusal, limit=str(limit)),
                                      retry_after=hit.retry_after())
                return
        strategy = self._memory if isinstance(storage, RedisStorage) else self._local(storage)
        if not strategy.hit(limit, "intake", address):
            reset = strategy.get_window_stats(limit, "intake", address).reset_time
            raise RateLimited(Sentence(refusal, limit=str(limit)),
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
    INTAKE_LIMIT.count(current_user())  # resolved already by auth_optional
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
    case_id = tracking.tracked_case_id(token)
    return {**tracked_report(token), "photos": tracking.public_photos(case_id),
            "rating": tracking.rating_of(case_id),
            "carried_by": tracking.carried_by(token, current_app.config["GRIDMGR_PUBLIC_URL"])}


@blp.route("/reports/track/<token>/rate", methods=["POST"])
@blp.arguments(TrackedRatingSchema)
@blp.response(200, CaseStepResultSchema)
@document_errors(blp, 404, 409, 422, notes={
    404: "report_not_found", 409: "conflict: the case is not closed; already_rated",
    422: "invalid_input, bad_rating"})
def rate_tracked_report(data, token):
    """The reporter of an anonymous report rates its closed case (1–5), once, by its token."""
    return tracking.rate_tracked(token, data["rating"], data.get("note"))


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
