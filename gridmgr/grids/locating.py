"""Locating a point in the hierarchy: its unit grid (or deepest region) and every ancestor."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text

from gridmgr.errors import DomainError
from gridmgr.extensions import db


class OutsideCity(DomainError):
    status = 422

    def __init__(self, lon: float, lat: float):
        super().__init__("outside_city",
                         f"The point ({lon:.6f}, {lat:.6f}) is outside every region of the city.")


@dataclass(frozen=True)
class RegionRef:
    id: int
    level: str
    code: str
    name: str

    def to_dict(self) -> dict:
        return {"id": self.id, "level": self.level, "code": self.code, "name": self.name}


@dataclass(frozen=True)
class Location:
    """The deepest region holding a point, and its ancestors from the district down."""

    region: RegionRef
    ancestors: tuple[RegionRef, ...]
    city_id: int

    def to_dict(self) -> dict:
        return {"region": self.region.to_dict(),
                "ancestors": [a.to_dict() for a in self.ancestors],
                "city_id": self.city_id}


# The deepest region containing the point; on a shared edge the smallest code wins, so the
# answer is always the same. Ancestors come from the parent chain in the same statement.
LOCATE_SQL = text("""
WITH RECURSIVE hit AS (
    SELECT id FROM regions
    WHERE ST_Intersects(geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))
    ORDER BY char_length(code) DESC, code
    LIMIT 1
), chain AS (
    SELECT r.id, r.parent_id, r.level, r.code, r.name, r.city_id, 0 AS depth
    FROM regions r JOIN hit ON hit.id = r.id
    UNION ALL
    SELECT p.id, p.parent_id, p.level, p.code, p.name, p.city_id, chain.depth + 1
    FROM regions p JOIN chain ON p.id = chain.parent_id
)
SELECT id, level, code, name, city_id FROM chain ORDER BY depth
""")


def locate(lon: float, lat: float) -> Location:
    """The unit grid (or deepest region) holding (lon, lat) in WGS 84, with its ancestors."""
    rows = db.session.execute(LOCATE_SQL, {"lon": lon, "lat": lat}).all()
    if not rows:
        raise OutsideCity(lon, lat)
    refs = [RegionRef(r.id, r.level, r.code, r.name) for r in rows]
    return Location(region=refs[0], ancestors=tuple(reversed(refs[1:])), city_id=rows[0].city_id)
