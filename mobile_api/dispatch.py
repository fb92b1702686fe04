"""Duty, positions and rosters over HTTP: ``/api/v1/duty``, ``/api/v1/positions`` (grid
workers) and ``/api/v1/rosters`` (duty chiefs and administrators, ``roster.manage``)."""

from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from gridmgr.dispatch import duty, rosters
from gridmgr.geo.coords import COORD_SYSTEMS
from gridmgr.people.policy import authorize, scope_filter
from mobile_api.auth import auth_required, current_user

blp = Blueprint("dispatch", __name__, description="Duty, positions and rosters of grid workers")


class DutySchema(Schema):
    on_duty = fields.Boolean(required=True)
    worker_id = fields.Integer(metadata={"description": "another worker (duty chiefs only)"})


class DutyStateSchema(Schema):
    worker_id = fields.Integer()
    on_duty = fields.Boolean()
    since = fields.DateTime()


class PositionSchema(Schema):
    lon = fields.Float(required=True, validate=validate.Range(-180, 180))
    lat = fields.Float(required=True, validate=validate.Range(-90, 90))
    accuracy_m = fields.Float(validate=validate.Range(min=0), allow_none=True)
    coord_sys = fields.String(load_default="wgs84", validate=validate.OneOf(COORD_SYSTEMS))


class StoredPositionSchema(Schema):
    worker_id = fields.Integer()
    lon = fields.Float()
    lat = fields.Float()
    accuracy_m = fields.Float(allow_none=True)
    at = fields.DateTime()
    stored = fields.Boolean()


class RosterQuery(Schema):
    grid = fields.String(validate=validate.Regexp(r"^[0-9]{6,15}$"),
                         metadata={"description": "only grids under this region code"})
    username = fields.String()


class RosterCreateSchema(Schema):
    username = fields.String(required=True)
    grid_code = fields.String(required=True, validate=validate.Regexp(r"^[0-9]{15}$"))
    from_ = fields.String(data_key="from", allow_none=True,
                          metadata={"description": "shift start HH:MM (none: all day)"})
    to = fields.String(allow_none=True, metadata={"description": "shift end HH:MM"})
    weekdays = fields.Raw(metadata={"description": "e.g. \"1-5\" or [1, 3, 5]; 1 = Monday"})


class RosterSchema(Schema):
    id = fields.Integer()
    username = fields.String()
    user_id = fields.Integer()
    grid_code = fields.String()
    grid_name = fields.String()
    from_ = fields.String(data_key="from", attribute="from", allow_none=True)
    to = fields.String(allow_none=True)
    weekdays = fields.List(fields.Integer())


@blp.route("/duty", methods=["POST"])
@auth_required()
@blp.arguments(DutySchema)
@blp.response(200, DutyStateSchema)
@blp.alt_response(403, description="forbidden: only for oneself, unless a duty chief")
@blp.alt_response(404, description="user_not_found")
def set_duty(data):
    """Go on or off duty (a duty chief may set a worker of their scope)."""
    return duty.set_duty(current_user(), data["on_duty"], data.get("worker_id"))


@blp.route("/positions", methods=["POST"])
@auth_required()
@blp.arguments(PositionSchema)
@blp.response(201, StoredPositionSchema)
@blp.alt_response(403, description="forbidden: this role sends no positions")
@blp.alt_response(409, description="off_duty: go on duty first")
@blp.alt_response(429, description="too_frequent: at most one position per interval per worker")
def send_position(data):
    """Send the worker's current position; kept as the last known one, pushed to the street."""
    return duty.record_position(current_user(), data["lon"], data["lat"],
                                data.get("accuracy_m"), data["coord_sys"])


@blp.route("/rosters")
@auth_required()
@blp.arguments(RosterQuery, location="query")
@blp.response(200, RosterSchema(many=True))
@blp.alt_response(403, description="forbidden: cannot manage rosters")
def list_rosters(query):
    """Roster entries inside the caller's scope."""
    user = current_user()
    prefix = query.get("grid") or scope_filter(user)
    authorize(user, "roster.manage", region_code=prefix, city_id=user.city_id)
    entries = rosters.list_roster(prefix, query.get("username"))
    return [rosters.describe(e) for e in entries if e.grid.city_id == user.city_id
            or user.city_id is None]


@blp.route("/rosters", methods=["POST"])
@auth_required()
@blp.arguments(RosterCreateSchema)
@blp.response(201, RosterSchema)
@blp.alt_response(403, description="forbidden: grid or worker outside the caller's scope")
@blp.alt_response(404, description="user_not_found, grid_not_found")
@blp.alt_response(409, description="already_rostered")
@blp.alt_response(422, description="not_a_worker, invalid_shift, invalid_weekdays")
def add_roster(data):
    """Roster a grid worker on a unit grid for a shift."""
    user = current_user()
    grid = rosters.find_grid(data["grid_code"], user.city_id)
    rosters.authorize_roster(user, grid)
    rosters.authorize_roster(user, grid, rosters.find_worker(data["username"]))
    entry = rosters.add_roster_entry(data["username"], grid.code, data.get("from_"),
                                     data.get("to"), data.get("weekdays"), grid.city_id,
                                     actor=user)
    return rosters.describe(entry)


@blp.route("/rosters/<int:entry_id>", methods=["DELETE"])
@auth_required()
@blp.response(204)
@blp.alt_response(403, description="forbidden: grid outside the caller's scope")
@blp.alt_response(404, description="roster_not_found")
def remove_roster(entry_id):
    """Remove a roster entry."""
    user = current_user()
    entry = rosters.get_roster_entry(entry_id)
    rosters.authorize_roster(user, entry.grid)
    rosters.remove_roster_entry(entry_id, actor=user)
