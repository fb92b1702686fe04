"""Administration of webhook endpoints: ``/api/v1/admin/webhooks``; city-wide administrators
only. The secret is written, never read back."""

from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from gridmgr.webhooks import operations
from mobile_api.auth import auth_required, current_user

blp = Blueprint("webhooks", __name__, description="Administration: webhook endpoints")


class EndpointCreateSchema(Schema):
    url = fields.String(required=True, validate=validate.Length(1, 2000))
    secret = fields.String(required=True, load_only=True, validate=validate.Length(1, 500))
    events = fields.List(fields.String(validate=validate.Length(1, 40)), required=True,
                         validate=validate.Length(1, 10))
    department = fields.String(allow_none=True, validate=validate.Length(1, 200))
    region_code = fields.String(allow_none=True, validate=validate.Regexp(r"^[0-9]{6,15}$"))


class ReplaySchema(Schema):
    from_seq = fields.Integer(required=True, strict=True, data_key="from",
                              validate=validate.Range(1, 2**62))


def _admin():
    user = current_user()
    operations.require_city_administrator(user)
    return user


@blp.route("/admin/webhooks", methods=["GET"])
@auth_required
def list_endpoints():
    """Every endpoint, without its secret."""
    _admin()
    return [operations.describe(e) for e in operations.endpoints_for_fan_out()]


@blp.route("/admin/webhooks", methods=["POST"])
@blp.arguments(EndpointCreateSchema)
@auth_required
def add_endpoint(body):
    """Register an endpoint for a department, a region or the city."""
    endpoint = operations.add_endpoint(body["url"], body["secret"], body["events"],
                                       body.get("department"), body.get("region_code"),
                                       actor=_admin())
    return operations.describe(endpoint), 201


@blp.route("/admin/webhooks/<int:endpoint_id>/<any(pause, resume):change>", methods=["POST"])
@auth_required
def change_state(endpoint_id: int, change: str):
    """Pause an endpoint, or resume it (what waited is delivered first)."""
    _admin()
    state = "paused" if change == "pause" else "active"
    return operations.describe(operations.set_state(endpoint_id, state))


@blp.route("/admin/webhooks/<int:endpoint_id>/replay", methods=["POST"])
@blp.arguments(ReplaySchema)
@auth_required
def replay(body, endpoint_id: int):
    """Deliver again every kept event from a sequence number on."""
    _admin()
    return {"queued": operations.replay(endpoint_id, body["from_seq"])}


@blp.route("/admin/webhooks/<int:endpoint_id>", methods=["DELETE"])
@auth_required
def remove(endpoint_id: int):
    """Forget an endpoint and its deliveries."""
    _admin()
    operations.remove_endpoint(endpoint_id)
    return "", 204
