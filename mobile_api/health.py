"""``GET /api/v1/health``: the server answers, and what it cannot yet do right.

The answer stays 200 with ``status: ok``; ``warnings`` names what an operator should fix,
such as a year whose public holidays and swapped working days (调休) no installed library
knows, so that deadlines in it follow the weekly pattern only (docs/calendar.md).
"""

from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from gridmgr.calendar.national import WARN_AHEAD_DAYS
from gridmgr.calendar.operations import uncovered_calendars

blp = Blueprint("health", __name__, description="Whether the server is up, with warnings")


class HealthQuery(Schema):
    days = fields.Integer(load_default=WARN_AHEAD_DAYS, validate=validate.Range(0, 36500),
                          metadata={"description": "check the calendars of the years reached "
                                                   "within this many days from today"})


class UncoveredSchema(Schema):
    country = fields.String(metadata={"description": "ISO 3166 alpha-2"})
    years = fields.List(fields.Integer())
    cities = fields.List(fields.String(), metadata={"description": "city slugs"})
    message = fields.String()


class CalendarHealthSchema(Schema):
    uncovered = fields.List(fields.Nested(UncoveredSchema))


class HealthSchema(Schema):
    status = fields.String(metadata={"enum": ["ok"]})
    warnings = fields.List(fields.String())
    calendar = fields.Nested(CalendarHealthSchema)


@blp.route("/health")
@blp.arguments(HealthQuery, location="query")
@blp.response(200, HealthSchema)
def health(query):
    """The server is up; warnings name national calendars missing for the coming years."""
    uncovered = uncovered_calendars(query["days"])
    return {"status": "ok", "warnings": [u["message"] for u in uncovered],
            "calendar": {"uncovered": uncovered}}
