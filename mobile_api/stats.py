"""Evaluation over HTTP: ``/api/v1/stats/regions|departments|people|categories``.

Each answers one table for a period (``period=YYYY-MM`` or ``start``/``end``), inside the
caller's scope, as JSON or, with ``format=csv`` or ``Accept: text/csv``, as a CSV download.
Every region of the level, department and active category has a row, with zero counts, null
rates and no grade when nothing happened there.
Definitions: docs/evaluation.md; rules: ``gridmgr.evaluation``.
"""

from __future__ import annotations

import re

from flask import Response, request
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from gridmgr.evaluation.operations import statistics
from gridmgr.evaluation.tables import to_csv
from gridmgr.grids.models import CODE_LENGTH
from mobile_api.auth import auth_required, current_user
from mobile_api.http import document_errors

blp = Blueprint("stats", __name__, description="Indicators, scores and grades (综合评价)")

CSV = "text/csv; charset=utf-8"


class StatsQuery(Schema):
    period = fields.String(validate=validate.Regexp(r"^\d{4}-\d{2}$"),
                           metadata={"description": "a month, YYYY-MM, in the city's time zone"})
    start = fields.String(validate=validate.Length(10, 40),
                          metadata={"description": "YYYY-MM-DD (local) or ISO time with offset"})
    end = fields.String(validate=validate.Length(10, 40),
                        metadata={"description": "excluded; like start"})
    level = fields.String(validate=validate.OneOf(tuple(CODE_LENGTH)), metadata={
        "description": "regions: group by this level (default: the one below `region`)"})
    region = fields.String(validate=validate.Regexp(r"^[0-9]{6}([0-9]{3}){0,3}$"), metadata={
        "description": "a region code inside your scope (default: your scope)"})
    city = fields.String(validate=validate.Length(1, 64),
                         metadata={"description": "city slug, for platform-wide users"})
    format = fields.String(load_default="json", validate=validate.OneOf(("json", "csv")))


class StatsRowSchema(Schema):
    key = fields.String(allow_none=True, metadata={
        "description": "region code, or department, category or user id"})
    name = fields.String(allow_none=True)
    code = fields.String(metadata={"description": "categories: the category code"})
    username = fields.String(metadata={"description": "people"})
    role = fields.String(metadata={"description": "people"})
    region_code = fields.String(allow_none=True, metadata={"description": "people"})
    score = fields.Float(allow_none=True, metadata={
        "description": "0-100; null: too little data (a row with zero counts has none)"})
    grade = fields.String(allow_none=True, metadata={"description": "A-E"})
    counts = fields.Dict(keys=fields.String(), values=fields.Integer())
    rates = fields.Dict(keys=fields.String(), values=fields.Float(allow_none=True),
                        metadata={"description": "null when the denominator is zero"})


class PeriodSchema(Schema):
    label = fields.String()
    start = fields.String()
    end = fields.String()


class StatsSchema(Schema):
    table = fields.String()
    city_id = fields.Integer()
    region = fields.String(allow_none=True, metadata={"description": "the prefix counted"})
    level = fields.String(allow_none=True)
    period = fields.Nested(PeriodSchema)
    rows = fields.List(fields.Nested(StatsRowSchema))


# CSV answers (format=csv or Accept: text/csv) are documented next to the JSON one.
_CSV_DOC = {"responses": {"200": {"description": "OK", "content": {
    "application/json": {"schema": "StatsSchema"},
    "text/csv": {"schema": {"type": "string"}}}}}}
_ERRORS = {403: "forbidden: no stats.view, or the region is outside your scope",
           404: "region_not_found, unknown_city",
           422: "bad_period, bad_level, city_required, invalid_input"}


def _answer(table: str, query: dict):
    wants_csv = query.pop("format") == "csv" or request.accept_mimetypes.best_match(
        ["application/json", "text/csv"]) == "text/csv"
    result = statistics(current_user(), table, **query)
    if not wants_csv:
        return result
    label = re.sub(r"[^0-9A-Za-z-]+", "_", result["period"]["label"])
    filename = f"stats-{table}-{label}.csv"
    return Response(to_csv(result["rows"]), content_type=CSV,
                    headers={"Content-Disposition": f"attachment; filename={filename}"})


@blp.route("/stats/regions")
@blp.arguments(StatsQuery, location="query")
@blp.response(200, StatsSchema)
@document_errors(blp, 403, 404, 422, notes=_ERRORS)
@blp.doc(**_CSV_DOC)
@auth_required
def region_stats(query):
    """Indicators, score and grade per region at a level (district, street, community, grid)."""
    return _answer("regions", query)


@blp.route("/stats/departments")
@blp.arguments(StatsQuery, location="query")
@blp.response(200, StatsSchema)
@document_errors(blp, 403, 404, 422, notes=_ERRORS)
@blp.doc(**_CSV_DOC)
@auth_required
def department_stats(query):
    """Indicators, score and grade per department, counting only cases in your scope."""
    return _answer("departments", query)


@blp.route("/stats/people")
@blp.arguments(StatsQuery, location="query")
@blp.response(200, StatsSchema)
@document_errors(blp, 403, 404, 422, notes=_ERRORS)
@blp.doc(**_CSV_DOC)
@auth_required
def people_stats(query):
    """Indicators per staff member whose region is in your scope; inspectors get a score."""
    return _answer("people", query)


@blp.route("/stats/categories")
@blp.arguments(StatsQuery, location="query")
@blp.response(200, StatsSchema)
@document_errors(blp, 403, 404, 422, notes=_ERRORS)
@blp.doc(**_CSV_DOC)
@auth_required
def category_stats(query):
    """Indicators per category, counting only cases in your scope."""
    return _answer("categories", query)
