"""Checks on region boundaries: valid polygons, no sibling overlaps, children inside parents, gaps.

Everything here works on WGS 84 shapely geometries and measures areas in square metres in an
equal-area projection. ``check_hierarchy`` runs the same checks in PostGIS over a whole city.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import shapely
from pyproj import CRS
from shapely.geometry.base import BaseGeometry
from sqlalchemy import text

from gridmgr.extensions import db
from gridmgr.geo.metric import areas_m2, polygonal

# Sibling overlaps up to this area are rounding noise of shared edges, not an error.
OVERLAP_TOLERANCE_M2 = 1.0
# Uncovered pieces smaller than this between siblings are not worth a warning.
GAP_TOLERANCE_M2 = 1.0
# A child may stick out of its parent by this share of its own area (boundary files from
# different sources never trace a shared border identically) before it is an error.
OUTSIDE_PARENT_SHARE = 0.001
# The code's three digits per level.
MAX_CHILDREN = 999


def overlapping_pairs(geoms: list[BaseGeometry], crs: CRS,
                      tolerance_m2: float = OVERLAP_TOLERANCE_M2) -> list[tuple[int, int, float]]:
    """Pairs (i < j) of geometries overlapping by more than ``tolerance_m2``, with the area."""
    arr = np.asarray(geoms, dtype=object)
    if len(arr) < 2:
        return []
    left, right = shapely.STRtree(arr).query(arr, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    if len(left) == 0:
        return []
    pieces = shapely.intersection(arr[left], arr[right])
    areas = areas_m2(pieces, crs)
    return [(int(i), int(j), float(a))
            for i, j, a in zip(left, right, areas, strict=True) if a > tolerance_m2]


def gap_pieces(geoms: list[BaseGeometry], container: BaseGeometry | None) -> list[BaseGeometry]:
    """Polygons inside ``container`` (or enclosed by the siblings) that no sibling covers."""
    union = shapely.union_all(np.asarray(geoms, dtype=object))
    if container is None:
        # Holes of the union; an island inside a hole is not part of the gap.
        container = shapely.union_all([shapely.Polygon(ring)
                                       for part in shapely.get_parts(polygonal(union))
                                       for ring in part.interiors])
    rest = polygonal(shapely.difference(container, union))
    return [p for p in shapely.get_parts(rest) if not p.is_empty]


@dataclass
class HealthReport:
    """The state of a city's hierarchy: problems make it unhealthy, warnings do not."""

    problems: list[dict] = field(default_factory=list)
    warnings: list[dict] = field(default_factory=list)
    counts: dict = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {"healthy": self.healthy, "counts": self.counts,
                "problems": self.problems, "warnings": self.warnings}


_COUNTS_SQL = text("""
SELECT c.slug, r.level, count(*) AS n
FROM regions r JOIN cities c ON c.id = r.city_id
WHERE (CAST(:city AS text) IS NULL OR c.slug = :city)
GROUP BY c.slug, r.level ORDER BY c.slug, r.level
""")

_INVALID_SQL = text("""
SELECT r.code, r.name, ST_IsValidReason(r.geom) AS reason
FROM regions r JOIN cities c ON c.id = r.city_id
WHERE (CAST(:city AS text) IS NULL OR c.slug = :city) AND NOT ST_IsValid(r.geom)
ORDER BY r.code
""")

# Siblings: same city and level (grids of one community, streets of one district, ...).
# The GiST index answers the && / ST_Intersects join; areas in metres via geography.
_OVERLAP_SQL = text("""
SELECT a.code AS a_code, a.name AS a_name, b.code AS b_code, b.name AS b_name,
       ST_Area(ST_Intersection(a.geom, b.geom)::geography) AS area_m2
FROM regions a
JOIN regions b ON b.city_id = a.city_id AND b.level = a.level AND a.code < b.code
             AND ST_Intersects(a.geom, b.geom) AND NOT ST_Touches(a.geom, b.geom)
JOIN cities c ON c.id = a.city_id
WHERE (CAST(:city AS text) IS NULL OR c.slug = :city)
  AND ST_IsValid(a.geom) AND ST_IsValid(b.geom)
  AND ST_Area(ST_Intersection(a.geom, b.geom)::geography) > :tolerance
ORDER BY a.code, b.code
""")

_OUTSIDE_SQL = text("""
SELECT ch.code, ch.name, p.code AS parent_code, p.name AS parent_name,
       ST_Area(ST_Difference(ch.geom, p.geom)::geography) AS area_m2
FROM regions ch JOIN regions p ON p.id = ch.parent_id
JOIN cities c ON c.id = ch.city_id
WHERE (CAST(:city AS text) IS NULL OR c.slug = :city)
  AND ST_IsValid(ch.geom) AND ST_IsValid(p.geom) AND NOT ST_CoveredBy(ch.geom, p.geom)
  AND ST_Area(ST_Difference(ch.geom, p.geom)::geography)
      > GREATEST(:tolerance, :share * ch.area_m2)
ORDER BY ch.code
""")

_GAPS_SQL = text("""
SELECT p.code, p.name, count(ch.id) AS children,
       ST_Area(ST_Difference(p.geom, ST_Union(ch.geom))::geography) AS gap_m2
FROM regions p JOIN regions ch ON ch.parent_id = p.id
JOIN cities c ON c.id = p.city_id
WHERE (CAST(:city AS text) IS NULL OR c.slug = :city)
  AND ST_IsValid(p.geom) AND ST_IsValid(ch.geom)
GROUP BY p.id, p.code, p.name, p.geom
HAVING ST_Area(ST_Difference(p.geom, ST_Union(ch.geom))::geography) > :tolerance
ORDER BY p.code
""")

_GRIDS_PER_PARENT_SQL = text("""
SELECT coalesce(p.code, substr(g.code, 1, 12)) AS parent_code, max(p.name) AS parent_name,
       count(*) AS grids
FROM regions g LEFT JOIN regions p ON p.id = g.parent_id
JOIN cities c ON c.id = g.city_id
WHERE (CAST(:city AS text) IS NULL OR c.slug = :city) AND g.level = 'grid'
GROUP BY 1 HAVING count(*) > :warn ORDER BY 1
""")


def check_hierarchy(city: str | None = None) -> HealthReport:
    """Health of the hierarchy of one city (slug) or of all: problems, warnings, counts."""
    params = {"city": city}
    report = HealthReport()
    session = db.session
    for slug, level, n in session.execute(_COUNTS_SQL, params):
        report.counts.setdefault(slug, {})[level] = n
    for code, name, reason in session.execute(_INVALID_SQL, params):
        report.problems.append({"problem": "invalid_geometry", "code": code, "name": name,
                                "reason": reason})
    for row in session.execute(_OVERLAP_SQL, {**params, "tolerance": OVERLAP_TOLERANCE_M2}):
        report.problems.append({
            "problem": "overlap", "codes": [row.a_code, row.b_code],
            "names": [row.a_name, row.b_name], "area_m2": round(row.area_m2, 1)})
    for row in session.execute(_OUTSIDE_SQL, {**params, "tolerance": OVERLAP_TOLERANCE_M2,
                                              "share": OUTSIDE_PARENT_SHARE}):
        report.problems.append({
            "problem": "outside_parent", "code": row.code, "name": row.name,
            "parent_code": row.parent_code, "parent_name": row.parent_name,
            "area_m2": round(row.area_m2, 1)})
    for row in session.execute(_GAPS_SQL, {**params, "tolerance": GAP_TOLERANCE_M2}):
        report.warnings.append({
            "warning": "gap", "code": row.code, "name": row.name, "children": row.children,
            "area_m2": round(row.gap_m2, 1)})
    for row in session.execute(_GRIDS_PER_PARENT_SQL, {**params, "warn": MAX_CHILDREN * 9 // 10}):
        entry = {"code": row.parent_code, "name": row.parent_name, "grids": row.grids,
                 "limit": MAX_CHILDREN}
        if row.grids > MAX_CHILDREN:
            report.problems.append({"problem": "too_many_grids", **entry})
        else:
            report.warnings.append({"warning": "near_grid_limit", **entry})
    return report
