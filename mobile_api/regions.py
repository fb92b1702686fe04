"""Read API for regions and locating points: ``/api/v1/regions``, ``/api/v1/locate``."""

from __future__ import annotations

import json

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import func, select

from gridmgr.errors import NotFound
from gridmgr.extensions import db
from gridmgr.grids.locating import locate
from gridmgr.grids.models import LEVELS, Region

blp = Blueprint("regions", __name__, description="Regions and unit grids")


class RegionQuery(Schema):
    level = fields.String(validate=validate.OneOf(LEVELS))
    parent = fields.String(validate=validate.Regexp(r"^[0-9]{6,15}$"))


class PointQuery(Schema):
    lon = fields.Float(required=True, validate=validate.Range(-180, 180))
    lat = fields.Float(required=True, validate=validate.Range(-90, 90))


def _feature(region: Region, geometry_json: str) -> dict:
    return {
        "type": "Feature",
        "id": region.code,
        "geometry": json.loads(geometry_json),
        "properties": {"code": region.code, "name": region.name, "level": region.level,
                       "area_m2": round(region.area_m2, 1),
                       "parent": region.parent.code if region.parent else None},
    }


@blp.route("/regions")
@blp.arguments(RegionQuery, location="query")
@blp.response(200)
def list_regions(query):
    """Regions as a GeoJSON FeatureCollection, filtered by level and parent code."""
    stmt = select(Region, func.ST_AsGeoJSON(Region.geom, 7)).order_by(Region.code)
    if "level" in query:
        stmt = stmt.where(Region.level == query["level"])
    if "parent" in query:
        parent = db.session.scalar(select(Region.id).where(Region.code == query["parent"]))
        if parent is None:
            raise NotFound(f"No region has the code {query['parent']}.")
        stmt = stmt.where(Region.parent_id == parent)
    features = [_feature(region, geometry) for region, geometry in db.session.execute(stmt)]
    return {"type": "FeatureCollection", "features": features}


@blp.route("/regions/<code>")
@blp.response(200)
def get_region(code):
    """One region as a GeoJSON Feature."""
    row = db.session.execute(select(Region, func.ST_AsGeoJSON(Region.geom, 7))
                             .where(Region.code == code)).first()
    if row is None:
        raise NotFound(f"No region has the code {code}.")
    return _feature(*row)


@blp.route("/locate")
@blp.arguments(PointQuery, location="query")
@blp.response(200)
@blp.alt_response(422, description="outside_city: the point is in no region")
def locate_point(query):
    """The unit grid holding a WGS 84 point and all its ancestors."""
    return locate(query["lon"], query["lat"]).to_dict()
