"""Components as Mapbox vector tiles (``ST_AsMVT``), layer ``components``, from zoom 15.

Every reader gets the public fields (code, name, category, state, unit grid); staff also get
the parties (department, owner, maintainer) of the components inside their scope, and the
wall's tiles hold only the components of the viewer's scope, as its grid tiles do. A tile
below :data:`MIN_ZOOM`, or with no component, is an empty MVT (zero bytes). The query is
bounded by the tile's envelope (GiST index on ``components.geom``) and :data:`MAX_FEATURES`.
"""

from __future__ import annotations

from sqlalchemy import text

from gridmgr.components.operations import is_staff
from gridmgr.extensions import db
from gridmgr.people.models import User
from gridmgr.people.policy import scope_filter, user_city_id

# Below this zoom a lamp is a speck among thousands; the phone and the wall ask from here on.
MIN_ZOOM = 15
MAX_FEATURES = 20_000
EXTENT = 4096
BUFFER = 64
LAYER = "components"

# ``:only_city``/``:only_like`` limit the tile (the wall's scope); ``:party_city``/
# ``:party_like`` say whose parties are shown (NULL city: nobody's; NULL like: the whole city).
_TILE_SQL = """
WITH bounds AS (
    SELECT ST_TileEnvelope(:z, :x, :y) AS env,
           ST_Transform(ST_TileEnvelope(:z, :x, :y), 4326) AS env4326
),
found AS (
    SELECT c.code, c.name, k.code AS category, c.state, c.grid_code,
           {parties}
           ST_AsMVTGeom(ST_Transform(c.geom, 3857), bounds.env, :extent, :buffer, true)
               AS geom
    FROM components c JOIN categories k ON k.id = c.category_id, bounds
    WHERE c.geom && bounds.env4326
      AND (CAST(:only_city AS integer) IS NULL OR c.city_id = :only_city)
      AND c.grid_code LIKE :only_like
    ORDER BY c.id
    LIMIT :limit
)
SELECT ST_AsMVT(found.*, :layer, :extent, 'geom') FROM found WHERE geom IS NOT NULL
"""
_PARTY = ("CASE WHEN (CAST(:party_all AS boolean) OR c.city_id = :party_city) "
          "AND c.grid_code LIKE :party_like THEN c.{0} END AS {0},")
_PARTIES = "\n           ".join(_PARTY.format(p) for p in ("department", "owner", "maintainer"))


def component_tile(user: User | None, z: int, x: int, y: int, *, city_id: int | None = None,
                   like: str = "%") -> bytes:
    """The MVT bytes of tile z/x/y (``check_tile`` done by the caller): the components there,
    limited to ``city_id`` and the code pattern ``like`` when given; parties for staff in
    scope, public fields for everyone else."""
    if z < MIN_ZOOM:
        return b""
    params = {"z": z, "x": x, "y": y, "only_city": city_id, "only_like": like,
              "extent": EXTENT, "buffer": BUFFER, "limit": MAX_FEATURES, "layer": LAYER}
    parties = ""
    if is_staff(user):
        own_city = user_city_id(user)
        parties = _PARTIES
        params |= {"party_all": own_city is None, "party_city": own_city,
                   "party_like": (scope_filter(user) or "") + "%"}
    data = db.session.execute(text(_TILE_SQL.format(parties=parties)), params).scalar()
    return bytes(data or b"")
