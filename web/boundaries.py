"""The city's regions as vector tiles anyone may read: shapes, codes and names only.

A citizen moving the pin of a report sees which street, community and unit grid it falls in;
nothing about cases is in these tiles (the wall's grid tiles, with their measures, are for
staff). Streets and communities from zoom 10, unit grids from zoom 13.
"""

from __future__ import annotations

from sqlalchemy import text

from gridmgr.extensions import db
from maps.tiles import BUFFER, EXTENT, MAX_FEATURES, check_tile

MIN_ZOOM = 10
GRID_ZOOM = 13

_TILE_SQL = """
WITH bounds AS (
    SELECT ST_TileEnvelope(:z, :x, :y) AS env,
           ST_Transform(ST_TileEnvelope(:z, :x, :y), 4326) AS env4326
),
shapes AS (
    SELECT r.code, r.name, r.level,
           ST_AsMVTGeom(ST_Transform(r.geom, 3857), bounds.env, :extent, :buffer, true) AS geom
    FROM regions r, bounds
    WHERE r.level = ANY(CAST(:levels AS text[])) AND r.geom && bounds.env4326
    LIMIT :limit
)
SELECT ST_AsMVT(shapes.*, 'regions', :extent, 'geom') FROM shapes WHERE geom IS NOT NULL
"""


def boundary_tile(z: int, x: int, y: int) -> bytes:
    """The MVT bytes of tile z/x/y: layer ``regions`` with ``code``, ``name`` and ``level``;
    empty (zero bytes) below :data:`MIN_ZOOM`."""
    check_tile(z, x, y)
    if z < MIN_ZOOM:
        return b""
    levels = ["street", "community"] + (["grid"] if z >= GRID_ZOOM else [])
    data = db.session.execute(text(_TILE_SQL), {
        "z": z, "x": x, "y": y, "levels": levels, "extent": EXTENT, "buffer": BUFFER,
        "limit": MAX_FEATURES}).scalar()
    return bytes(data or b"")


def city_view() -> dict:
    """Where the map opens: the first city's name and its bounding box (west, south, east,
    north), or None when no region is loaded."""
    row = db.session.execute(text("""
        SELECT c.name, ST_XMin(box) AS w, ST_YMin(box) AS s, ST_XMax(box) AS e, ST_YMax(box) AS n
        FROM cities c CROSS JOIN LATERAL (
            SELECT ST_Extent(geom) AS box FROM regions
            WHERE city_id = c.id AND parent_id IS NULL) ext
        ORDER BY c.id LIMIT 1""")).one_or_none()
    if row is None or row.w is None:
        return {"name": row.name if row else "", "bbox": None}
    return {"name": row.name, "bbox": [row.w, row.s, row.e, row.n]}
