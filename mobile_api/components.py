"""Components (部件): ``/api/v1/components`` (by bbox, category, state), one component with
its history and cases, an administrator's edit, and a closed case's component state.

Anonymous readers get the public fields; staff in scope also get the parties and cases.
"""

from __future__ import annotations

from flask import Response
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from gridmgr.components import operations as ops
from gridmgr.components.models import STATES
from gridmgr.components.tiles import component_tile
from maps.tiles import MVT_MIME, BadTile, check_tile
from mobile_api.auth import auth_optional, auth_required, current_user
from mobile_api.http import document_errors
from mobile_api.regions import BBoxField

blp = Blueprint("components", __name__, description="Components (部件) of the city")

COMPONENT_CODE = validate.Regexp(r"^[0-9]{16}$", error="a 16-digit component code")


class ComponentQuery(Schema):
    bbox = BBoxField(required=True, metadata={"description": "west,south,east,north (WGS 84)"})
    category = fields.String(validate=validate.Length(1, 32),
                             metadata={"description": "a component subclass, e.g. C0111"})
    state = fields.String(validate=validate.OneOf(STATES))
    limit = fields.Integer(load_default=1000, validate=validate.Range(1, ops.MAX_FEATURES))


class ComponentEditSchema(Schema):
    name = fields.String(validate=validate.Length(1, 200))
    state = fields.String(validate=validate.OneOf(STATES))
    department = fields.String(allow_none=True, validate=validate.Length(max=200))
    owner = fields.String(allow_none=True, validate=validate.Length(max=200))
    maintainer = fields.String(allow_none=True, validate=validate.Length(max=200))


class CaseComponentStateSchema(Schema):
    state = fields.String(required=True, validate=validate.OneOf(STATES), metadata={
        "description": "the component's state as the closed case left it (repaired or "
                       "replaced: intact)"})


@blp.route("/components")
@auth_optional
@blp.arguments(ComponentQuery, location="query")
@blp.response(200, description="a GeoJSON FeatureCollection of components, by code")
def list_components(query):
    """Components inside a bbox, by category and state."""
    return ops.component_collection(current_user(), query["bbox"], query.get("category"),
                                    query.get("state"), query["limit"])


@blp.route("/components/tiles/<z>/<x>/<y>.pbf")
@auth_optional
@document_errors(blp, 400, notes={400: "bad_tile_address, bad_tile_zoom or bad_tile_xy"})
def component_tiles(z, x, y):
    """Components of tile z/x/y as MVT (layer ``components``, from zoom 15; empty below):
    public fields for everyone, parties for staff in scope."""
    for value, name in ((z, "z"), (x, "x"), (y, "y")):
        if not value.isdigit():
            raise BadTile("bad_tile_address", f"{name} must be a non-negative integer.",
                          **{name: value})
    zoom, col, row = int(z), int(x), int(y)
    check_tile(zoom, col, row)
    user = current_user()
    return Response(component_tile(user, zoom, col, row), mimetype=MVT_MIME,
                    headers={"Cache-Control": "private, max-age=60" if user
                             else "public, max-age=60"})


@blp.route("/components/<code>")
@auth_optional
@blp.response(200, description="one component as a GeoJSON Feature (staff: history, cases)")
@blp.alt_response(404, description="component_not_found")
def get_component(code):
    """One component; staff in scope also get its history and the cases reported at it."""
    return ops.component_detail(current_user(), code)


@blp.route("/admin/components/<code>", methods=["PATCH"])
@auth_required()
@blp.arguments(ComponentEditSchema)
@blp.response(200, description="the component after the edit")
@blp.alt_response(403, description="forbidden: not an administrator of its place")
@blp.alt_response(404, description="component_not_found")
def edit_component(data, code):
    """Edit a component's name, state or parties (administrators; audited)."""
    return ops.edit_component(current_user(), code, data)


@blp.route("/cases/<int:case_id>/component-state", methods=["POST"])
@auth_required()
@blp.arguments(CaseComponentStateSchema)
@blp.response(200, description="the component after its case")
@document_errors(blp, 403, 404, 409, 422, notes={
    403: "forbidden: may not close cases there", 404: "case_not_found",
    409: "case_not_closed", 422: "no_component: the case was not reported at a component"})
def set_component_state(data, case_id):
    """Set the state of the component a closed case was reported at."""
    return ops.set_state_after_case(current_user(), case_id, data["state"])
