"""Reading regions as GeoJSON and locating points for the API: bounded, filtered, one query each."""

from __future__ import annotations

import base64
import binascii
import json

import numpy as np
from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import aliased

from gridmgr.errors import InvalidInput, NotFound
from gridmgr.extensions import db
from gridmgr.geo.coords import check_coord_sys, coords_to_wgs84, to_wgs84
from gridmgr.grids.locating import current_index, locate
from gridmgr.grids.models import City, Region

MAX_FEATURES = 5000
MAX_BATCH_POINTS = 10_000
COORDINATE_DIGITS = 7

_Parent = aliased(Region)


def find_region(code: str, city_id: int | None = None) -> Region:
    """The region with ``code`` in the city ``city_id`` (in any city when None): the one lookup
    of a region by its code, with one set of errors: 404 ``region_not_found``, and 422
    ``city_required`` when no city is named and several cities have the code."""
    statement = select(Region).where(Region.code == code)
    if city_id is not None:
        statement = statement.where(Region.city_id == city_id)
    regions = db.session.scalars(statement.limit(2)).all()
    if not regions:
        raise NotFound(f"No region has the code {code!r:.40}.", code="region_not_found")
    if len(regions) > 1:
        raise InvalidInput(f"Several cities have a region {code!r:.40}: name the city.",
                           code="city_required")
    return regions[0]


def _features_query():
    return (select(Region, _Parent.code, City.slug,
                   func.ST_AsGeoJSON(Region.geom, COORDINATE_DIGITS))
            .join(City, City.id == Region.city_id)
            .outerjoin(_Parent, _Parent.id == Region.parent_id))


def _feature(region: Region, parent_code: str | None, city: str, geometry: str) -> dict:
    return {
        "type": "Feature",
        "id": region.code,
        "geometry": json.loads(geometry),
        "properties": {"code": region.code, "name": region.name, "level": region.level,
                       "area_m2": round(region.area_m2, 1), "parent": parent_code,
                       "city": city, "generated": region.generated},
    }


def region_collection(level: str | None = None, parent: str | None = None,
                      city: str | None = None,
                      bbox: tuple[float, float, float, float] | None = None,
                      limit: int = 1000, cursor: str | None = None) -> dict:
    """Regions as a GeoJSON FeatureCollection in code order, at most ``limit`` features.

    ``next`` is the cursor of the following page (None on the last): a keyset on (code,
    city), read from the code index, so every page costs the same however deep it is."""
    if not 1 <= limit <= MAX_FEATURES:
        raise InvalidInput(f"limit must be between 1 and {MAX_FEATURES}.", code="bad_limit")
    stmt = _features_query().order_by(Region.code, Region.city_id).limit(limit + 1)
    if cursor is not None:
        after_code, after_city = _decode_region_cursor(cursor)
        stmt = stmt.where(Region.code >= after_code,
                          tuple_(Region.code, Region.city_id) > (after_code, after_city))
    if city is not None:
        stmt = stmt.where(City.slug == city)
    if level is not None:
        stmt = stmt.where(Region.level == level)
    if parent is not None:
        parents = select(Region.id).where(Region.code == parent)
        if city is not None:
            parents = parents.join(City, City.id == Region.city_id).where(City.slug == city)
        parent_ids = db.session.scalars(parents).all()
        if not parent_ids:
            raise NotFound(f"No region has the code {parent}.", code="unknown_region",
                           code_value=parent)
        stmt = stmt.where(Region.parent_id.in_(parent_ids))
    if bbox is not None:
        west, south, east, north = bbox
        if not (west < east and south < north):
            raise InvalidInput("bbox must be west,south,east,north with west < east and "
                               "south < north.", code="bad_bbox")
        stmt = stmt.where(func.ST_Intersects(
            Region.geom, func.ST_MakeEnvelope(west, south, east, north, 4326)))
    rows = db.session.execute(stmt).all()
    features = [_feature(*row) for row in rows[:limit]]
    more = len(rows) > limit
    last = rows[limit - 1][0] if more else None
    return {"type": "FeatureCollection", "features": features,
            "numberReturned": len(features), "truncated": more,
            "next": _region_cursor(last.code, last.city_id) if last is not None else None}


def _region_cursor(code: str, city_id: int) -> str:
    return base64.urlsafe_b64encode(f"{code}:{city_id}".encode()).decode().rstrip("=")


def _decode_region_cursor(cursor: str) -> tuple[str, int]:
    """The (code, city id) a cursor from :func:`region_collection` continues after."""
    try:
        code, city_id = base64.urlsafe_b64decode(
            cursor + "=" * (-len(cursor) % 4)).decode("ascii").split(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        code, city_id = "", ""
    if not (code.isascii() and code.isdigit() and len(code) <= 15
            and city_id.isascii() and city_id.isdigit() and len(city_id) <= 18):
        raise InvalidInput("The cursor is not one this API gave out; start again without "
                           "it.", code="bad_cursor")
    return code, int(city_id)


def region_feature(code: str, city: str | None = None) -> dict:
    """One region as a GeoJSON Feature; NotFound (``unknown_region``) when no region has it."""
    stmt = _features_query().where(Region.code == code).order_by(Region.city_id)
    if city is not None:
        stmt = stmt.where(City.slug == city)
    rows = db.session.execute(stmt.limit(2)).all()
    if not rows:
        raise NotFound(f"No region has the code {code}.", code="unknown_region", code_value=code)
    if len(rows) > 1:
        raise InvalidInput(f"Several cities have a region {code}; name the city.",
                           code="ambiguous_region", code_value=code)
    return _feature(*rows[0])


def locate_point(lon: float, lat: float, coord_sys: str = "wgs84") -> dict:
    """The unit grid (or deepest region) and ancestors of one point, as a dict."""
    wgs_lon, wgs_lat = to_wgs84(lon, lat, coord_sys)
    body = locate(wgs_lon, wgs_lat).to_dict()
    body["point"] = {"lon": wgs_lon, "lat": wgs_lat}
    return body


def locate_points(points: list, coord_sys: str = "wgs84") -> list[dict]:
    """Each point's location dict, or ``{"error": {"code": "outside_city", ...}}``, in order."""
    check_coord_sys(coord_sys)
    if not 1 <= len(points) <= MAX_BATCH_POINTS:
        raise InvalidInput(f"Send between 1 and {MAX_BATCH_POINTS} points.",
                           code="bad_batch_size", count=len(points))
    try:
        xy = np.array(points, dtype=np.float64).reshape(len(points), 2)
    except (TypeError, ValueError) as exc:
        raise InvalidInput("points must be a list of [lon, lat] pairs of numbers.",
                           code="bad_points") from exc
    bad = ~(np.isfinite(xy).all(axis=1) & (np.abs(xy[:, 0]) <= 180) & (np.abs(xy[:, 1]) <= 90))
    if bad.any():
        raise InvalidInput("Every point must be [lon, lat] with lon in [-180, 180] and lat in "
                           "[-90, 90].", code="bad_points", indexes=np.flatnonzero(bad).tolist())
    xy = coords_to_wgs84(xy, coord_sys)
    index = current_index()  # one index for both steps, even if regions change meanwhile
    locations = index.locations(index.locate_ids(xy[:, 0], xy[:, 1]))
    bodies: dict[int, dict] = {}  # points in the same grid share one serialised location
    outside = {"code": "outside_city", "message": "The point is outside every region."}
    results = []
    for (lon, lat), location in zip(xy.tolist(), locations, strict=True):
        point = {"lon": lon, "lat": lat}
        if location is None:
            results.append({"point": point, "error": outside})
        else:
            body = bodies.get(location.region.id)
            if body is None:
                body = bodies[location.region.id] = location.to_dict()
            results.append({**body, "point": point})
    return results
