"""Unit grids as Mapbox vector tiles, cut by PostGIS (``ST_AsMVT``), shaded by a measure.

A tile holds the unit grids of the viewer's scope that touch it, each with its code, name
and the chosen measure's value (``value``). A tile with no grid is an empty MVT: a valid
tile of zero bytes, served as 200 (clients decode it to "no layers"). Every query is
bounded by the tile's envelope (GiST indexes on ``regions.geom`` and ``cases.location``) and
by :data:`MAX_FEATURES`.
"""

from __future__ import annotations

from sqlalchemy import text

from gridmgr.calendar.deadlines import overdue_sql
from gridmgr.cases.models import OPEN_STATES
from gridmgr.errors import DomainError
from gridmgr.extensions import db
from maps.prevention import forecast_for_grids
from maps.viewer import Viewer

MAX_ZOOM = 22
# Below this zoom a grid is smaller than a pixel; the tile stays empty.
MIN_GRID_ZOOM = 12
MAX_FEATURES = 12_000
EXTENT = 4096
BUFFER = 64
MEASURES = ("open", "overdue", "reports7d", "forecast")
MVT_MIME = "application/vnd.mapbox-vector-tile"

_OPEN = ", ".join(f"'{s}'" for s in OPEN_STATES)
# Each measure counts, per grid code, the cases (or reports) of the tile's grids.
_MEASURE_SQL = {
    "open": f"""
        SELECT c.grid_code, count(*) AS value FROM cases c, area
        WHERE c.location && area.box AND c.city_id = :city AND c.grid_code LIKE :like
          AND c.state IN ({_OPEN})
        GROUP BY c.grid_code""",
    "overdue": f"""
        SELECT c.grid_code, count(*) AS value FROM cases c, area
        WHERE c.location && area.box AND c.city_id = :city AND c.grid_code LIKE :like
          AND c.state IN ({_OPEN}) AND c.state <> 'shelved' AND {overdue_sql("c.deadline")}
        GROUP BY c.grid_code""",
    "reports7d": """
        SELECT c.grid_code, count(*) AS value FROM cases c JOIN reports r ON r.case_id = c.id,
               area
        WHERE c.location && area.box AND c.city_id = :city AND c.grid_code LIKE :like
          AND r.created_at >= now() - interval '7 days'
        GROUP BY c.grid_code""",
}

# A grid crossing the tile's edge must carry the same value in every tile: the measure counts
# the cases of the tile's grids (located inside their extent), not only those inside the tile.
_TILE_SQL = """
WITH bounds AS (
    SELECT ST_TileEnvelope(:z, :x, :y) AS env,
           ST_Transform(ST_TileEnvelope(:z, :x, :y), 4326) AS env4326
),
tile_grids AS (
    SELECT r.code, r.name, r.geom FROM regions r, bounds
    WHERE r.level = 'grid' AND r.city_id = :city AND r.code LIKE :like
      AND r.geom && bounds.env4326
    LIMIT :limit
),
area AS (SELECT ST_SetSRID(ST_Extent(geom)::geometry, 4326) AS box FROM tile_grids),
measure AS ({measure}),
grids AS (
    SELECT g.code, g.name, coalesce(m.value, 0)::int AS value,
           ST_AsMVTGeom(ST_Transform(g.geom, 3857), bounds.env, :extent, :buffer, true) AS geom
    FROM tile_grids g CROSS JOIN bounds LEFT JOIN measure m ON m.grid_code = g.code
)
SELECT ST_AsMVT(grids.*, 'grids', :extent, 'geom') FROM grids WHERE geom IS NOT NULL
"""


# Next week's forecast: the tile's grids are looked up in the city's forecast (kept per
# process, maps/prevention.py) and joined as arrays; ``value`` is the expected count (float),
# ``low``/``high`` the 90 % interval, ``top`` the top categories in the viewer's language.
_TILE_CODES_SQL = """
SELECT r.code FROM regions r
WHERE r.level = 'grid' AND r.city_id = :city AND r.code LIKE :like
  AND r.geom && ST_Transform(ST_TileEnvelope(:z, :x, :y), 4326)
ORDER BY r.code LIMIT :limit
"""
_FORECAST_TILE_SQL = """
WITH bounds AS (
    SELECT ST_TileEnvelope(:z, :x, :y) AS env
),
tile_grids AS (
    SELECT r.code, r.name, r.geom FROM regions r
    WHERE r.level = 'grid' AND r.city_id = :city AND r.code = ANY(CAST(:codes AS text[]))
),
forecast AS (
    SELECT * FROM unnest(CAST(:f_codes AS text[]), CAST(:f_values AS float8[]),
                         CAST(:f_low AS int[]), CAST(:f_high AS int[]), CAST(:f_top AS text[]))
        AS f(grid_code, value, low, high, top)
),
grids AS (
    SELECT g.code, g.name, coalesce(f.value, 0)::float8 AS value,
           coalesce(f.low, 0) AS low, coalesce(f.high, 0) AS high, coalesce(f.top, '') AS top,
           ST_AsMVTGeom(ST_Transform(g.geom, 3857), bounds.env, :extent, :buffer, true) AS geom
    FROM tile_grids g CROSS JOIN bounds LEFT JOIN forecast f ON f.grid_code = g.code
)
SELECT ST_AsMVT(grids.*, 'grids', :extent, 'geom') FROM grids WHERE geom IS NOT NULL
"""


class BadTile(DomainError):
    """A tile address or measure that does not exist: 400 with a precise code."""

    status = 400


def check_tile(z: int, x: int, y: int) -> None:
    """Refuse a z/x/y that is not a tile of the web-mercator pyramid."""
    if not 0 <= z <= MAX_ZOOM:
        raise BadTile("bad_tile_zoom", f"Zoom must be between 0 and {MAX_ZOOM}.", z=z)
    side = 1 << z
    if not (0 <= x < side and 0 <= y < side):
        raise BadTile("bad_tile_xy", f"At zoom {z}, x and y must be between 0 and {side - 1}.",
                      z=z, x=x, y=y)


def check_measure(measure: str) -> str:
    """The measure name, or a 400 naming the ones that exist."""
    if measure not in MEASURES:
        raise BadTile("bad_measure", f"measure must be one of {', '.join(MEASURES)}.",
                      measure=measure)
    return measure


def grid_tile(viewer: Viewer, z: int, x: int, y: int, measure: str = "open",
              lang: str = "zh") -> bytes:
    """The MVT bytes of tile z/x/y: layer ``grids`` with ``code``, ``name``, ``value`` (and
    ``low``, ``high``, ``top`` for the forecast)."""
    check_tile(z, x, y)
    check_measure(measure)
    if z < MIN_GRID_ZOOM:
        return b""
    if measure == "forecast":
        return _forecast_tile(viewer, z, x, y, lang)
    sql = text(_TILE_SQL.format(measure=_MEASURE_SQL[measure]))
    data = db.session.execute(sql, {
        "z": z, "x": x, "y": y, "city": viewer.city_id, "like": viewer.like,
        "extent": EXTENT, "buffer": BUFFER, "limit": MAX_FEATURES,
    }).scalar()
    return bytes(data or b"")


def _forecast_tile(viewer: Viewer, z: int, x: int, y: int, lang: str) -> bytes:
    tile = {"z": z, "x": x, "y": y, "city": viewer.city_id}
    codes = db.session.scalars(text(_TILE_CODES_SQL), {
        **tile, "like": viewer.like, "limit": MAX_FEATURES}).all()
    if not codes:
        return b""
    rows = forecast_for_grids(viewer, codes, lang)
    columns = list(zip(*rows, strict=True)) if rows else [[], [], [], [], []]
    data = db.session.execute(text(_FORECAST_TILE_SQL), {
        **tile, "codes": codes, "extent": EXTENT, "buffer": BUFFER,
        **{name: list(values) for name, values in zip(
            ("f_codes", "f_values", "f_low", "f_high", "f_top"), columns, strict=True)},
    }).scalar()
    return bytes(data or b"")
