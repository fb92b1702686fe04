"""Prevention over HTTP: ``/api/v1/hotspots`` and ``/api/v1/forecast`` (docs/prevention.md).

Both need ``map.view`` (the command side and grid inspectors) and answer inside the caller's
region scope.
"""

from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from gridmgr.prevention.operations import forecast_for, hotspots_for
from mobile_api.auth import auth_required, current_user
from mobile_api.http import document_errors

blp = Blueprint("prevention", __name__,
                description="Hotspots, recurring problems and next week's forecast (预防)")

REGION = validate.Regexp(r"^[0-9]{6}([0-9]{3}){0,3}$", error="a 6, 9, 12 or 15 digit code")


class ScopeQuery(Schema):
    region = fields.String(validate=REGION, metadata={
        "description": "a region code inside your scope (default: your scope)"})
    city = fields.String(validate=validate.Length(1, 64),
                         metadata={"description": "city slug, for platform-wide users"})


class HotspotQuery(ScopeQuery):
    end = fields.AwareDateTime(metadata={
        "description": "end of the 7-day period, ISO time with offset (default: now)"})
    weeks = fields.Integer(load_default=12, validate=validate.Range(2, 104),
                           metadata={"description": "weeks of history to compare with"})
    alpha = fields.Float(load_default=0.05, validate=validate.Range(0.0001, 0.5),
                         metadata={"description": "false discovery rate"})
    window_days = fields.Integer(load_default=28, validate=validate.Range(1, 366))
    min_cases = fields.Integer(load_default=3, validate=validate.Range(2, 1000))
    reopen_days = fields.Integer(load_default=14, validate=validate.Range(1, 366))


class ForecastQuery(ScopeQuery):
    start = fields.Date(metadata={"description": "first day of the week (default: next Monday)"})


class HotspotSchema(Schema):
    grid_code = fields.String()
    category = fields.String(allow_none=True, metadata={"description": "null: all categories"})
    count = fields.Integer(metadata={"description": "cases in the period"})
    expected_history = fields.Float()
    expected_neighbours = fields.Float()
    q_history = fields.Float(metadata={"description": "Benjamini-Hochberg adjusted p-value"})
    q_neighbours = fields.Float()


class RecurringSchema(Schema):
    grid_code = fields.String()
    category = fields.String()
    cases = fields.Integer()
    reappeared = fields.Integer(metadata={"description": "cases back soon after a closing"})
    case_codes = fields.List(fields.String())
    last_at = fields.String()
    kinds = fields.List(fields.String(), metadata={"description": "repeated, reappeared"})


class HotspotPeriodSchema(Schema):
    start = fields.String()
    end = fields.String()
    history_weeks = fields.Integer()


class HotspotsSchema(Schema):
    region = fields.String(allow_none=True)
    period = fields.Nested(HotspotPeriodSchema)
    hotspots = fields.List(fields.Nested(HotspotSchema))
    recurring = fields.List(fields.Nested(RecurringSchema))


class CategoryForecastSchema(Schema):
    category = fields.String()
    expected = fields.Float()
    low = fields.Integer(metadata={"description": "5 % quantile"})
    high = fields.Integer(metadata={"description": "95 % quantile"})
    by_day = fields.List(fields.Float(), metadata={"description": "expected per day"})


class GridForecastSchema(Schema):
    grid_code = fields.String()
    expected = fields.Float()
    low = fields.Integer()
    high = fields.Integer()
    categories = fields.List(fields.Nested(CategoryForecastSchema))


class WeekSchema(Schema):
    start = fields.String()
    end = fields.String()


class ForecastSchema(Schema):
    region = fields.String(allow_none=True)
    week = fields.Nested(WeekSchema)
    grids = fields.List(fields.Nested(GridForecastSchema))


_ERRORS = {403: "forbidden: no map.view, or the region is outside your scope",
           404: "region_not_found, unknown_city", 422: "city_required, invalid_input"}


@blp.route("/hotspots")
@blp.arguments(HotspotQuery, location="query")
@blp.response(200, HotspotsSchema)
@document_errors(blp, 403, 404, 422, notes=_ERRORS)
@auth_required
def hotspots(query):
    """Grids and categories unusually busy in the last 7 days, and recurring problems."""
    return hotspots_for(current_user(), **query)


@blp.route("/forecast")
@blp.arguments(ForecastQuery, location="query")
@blp.response(200, ForecastSchema)
@document_errors(blp, 403, 404, 422, notes=_ERRORS)
@auth_required
def forecast(query):
    """Expected cases per grid and category for a week, with a 90 % interval."""
    return forecast_for(current_user(), **query)
