"""Read API for regions and locating points: ``/api/v1/regions``, ``/api/v1/locate``.

Public and read-only. Coordinates are WGS 84 unless ``coord_sys`` says gcj02 or bd09.
"""

from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate

from gridmgr.errors import InvalidInput
from gridmgr.geo.coords import COORD_SYSTEMS
from gridmgr.grids import reading
from gridmgr.grids.models import LEVELS

blp = Blueprint("regions", __name__, description="Regions and unit grids")

REGION_CODE = validate.Regexp(r"^[0-9]{6}([0-9]{3}){0,3}$",
                              error="a 6, 9, 12 or 15 digit region code")


def _bbox(value: str) -> tuple[float, float, float, float]:
    try:
        parts = tuple(float(p) for p in value.split(","))
    except ValueError as exc:
        raise ValidationError("bbox is west,south,east,north in degrees") from exc
    if len(parts) != 4:
        raise ValidationError("bbox is west,south,east,north in degrees")
    return parts


class BBoxField(fields.String):
    def _deserialize(self, value, attr, data, **kwargs):
        return _bbox(super()._deserialize(value, attr, data, **kwargs))


class RegionQuery(Schema):
    level = fields.String(validate=validate.OneOf(LEVELS))
    parent = fields.String(validate=REGION_CODE, metadata={"description": "parent region code"})
    city = fields.String(metadata={"description": "city slug"})
    bbox = BBoxField(metadata={"description": "west,south,east,north (WGS 84)"})
    limit = fields.Integer(load_default=1000, validate=validate.Range(1, reading.MAX_FEATURES))
    cursor = fields.String(validate=validate.Length(1, 64),
                           metadata={"description": "the `next` of the previous page"})


class RegionPageSchema(Schema):
    type = fields.String(metadata={"description": "FeatureCollection"})
    features = fields.List(fields.Raw(), metadata={"description": "GeoJSON Features"})
    numberReturned = fields.Integer()
    truncated = fields.Boolean(metadata={"description": "more regions match after this page"})
    next = fields.String(allow_none=True, metadata={
        "description": "cursor of the next page (pass it as `cursor`); null on the last page"})


class RegionCodeQuery(Schema):
    city = fields.String(metadata={"description": "city slug, when codes repeat across cities"})


class PointQuery(Schema):
    lon = fields.Float(required=True, validate=validate.Range(-180, 180))
    lat = fields.Float(required=True, validate=validate.Range(-90, 90))
    coord_sys = fields.String(load_default="wgs84", validate=validate.OneOf(COORD_SYSTEMS))


class BatchSchema(Schema):
    points = fields.List(fields.Raw(), required=True,
                         validate=validate.Length(1, reading.MAX_BATCH_POINTS),
                         metadata={"description": "[[lon, lat], ...]"})
    coord_sys = fields.String(load_default="wgs84", validate=validate.OneOf(COORD_SYSTEMS))


@blp.route("/regions")
@blp.arguments(RegionQuery, location="query")
@blp.response(200, RegionPageSchema)
@blp.alt_response(404, description="unknown_region: no region has the parent code")
@blp.alt_response(422, description="invalid_input, bad_bbox, bad_cursor: the query is not "
                                   "valid")
def list_regions(query):
    """Regions as a GeoJSON FeatureCollection, filtered by level, parent, city and bbox.

    At most ``limit`` features (default 1000, at most 5000) in code order; ``truncated`` says
    whether more matched, and ``next`` is the cursor of the following page: send it as
    ``cursor`` with the same filters to read every region of a city, page by page.
    """
    return reading.region_collection(**query)


@blp.route("/regions/<code>")
@blp.arguments(RegionCodeQuery, location="query")
@blp.response(200)
@blp.alt_response(404, description="unknown_region: no region has this code")
@blp.alt_response(422, description="invalid_input: not a 6, 9, 12 or 15 digit code; "
                                   "ambiguous_region: the code exists in several cities")
def get_region(query, code):
    """One region as a GeoJSON Feature."""
    try:
        REGION_CODE(code)
    except ValidationError as exc:
        raise InvalidInput(f"{code!r} is not a region code: {exc.messages[0]}.",
                           code="bad_region_code") from exc
    return reading.region_feature(code, query.get("city"))


@blp.route("/locate")
@blp.arguments(PointQuery, location="query")
@blp.response(200)
@blp.alt_response(422, description="outside_city: the point is in no region; "
                                   "invalid_input: lon/lat missing or out of range")
def locate_point(query):
    """The unit grid holding a point and all its ancestors (district first)."""
    return reading.locate_point(query["lon"], query["lat"], query["coord_sys"])


@blp.route("/locate", methods=["POST"])
@blp.arguments(BatchSchema)
@blp.response(200)
@blp.alt_response(422, description="invalid_input, bad_points, bad_batch_size")
def locate_batch(body):
    """Locate up to 10,000 points at once; a point outside the city gets an ``error`` entry."""
    return {"results": reading.locate_points(body["points"], body["coord_sys"])}
