"""``--repair``: give every overlap to one neighbour and fill slivers, on one noded coverage.

All boundaries (and the parents they must fill) are cut into faces along every edge; each
face goes to exactly one region: the first in order among those covering it (regions already
in the database first, then by code), or, for an uncovered sliver, the neighbour sharing most
of its edge. Regions are rebuilt from their faces, so neighbours share identical edges,
nothing that was covered is left uncovered, and every change is listed.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import shapely
from pyproj import CRS
from shapely.geometry.base import BaseGeometry
from tqdm import tqdm

from gridmgr.geo.metric import areas_m2, make_polygonal_valid

# An uncovered face between siblings is a sliver (filled) when it is at most this share of
# the smallest sibling it touches; larger gaps are real holes and stay (reported as warnings).
SLIVER_SHARE = 0.01
# Overlaps smaller than this are rounding of shared edges: settled, but listed as one summary.
NOISE_M2 = 0.1


def _point(geom: BaseGeometry) -> list[float]:
    p = geom.representative_point()
    return [round(p.x, 6), round(p.y, 6)]


def settle_coverage(geoms: list[BaseGeometry], labels: list[str], order: list[int], crs: CRS,
                    containers: list[BaseGeometry] = (),
                    fixed: list[tuple[BaseGeometry, str]] = (),
                    progress: bool = False) -> tuple[list[BaseGeometry], list[dict]]:
    """Rebuild ``geoms`` so that no two overlap and slivers between them are filled.

    ``order`` ranks the features (the earlier keeps an overlap); ``fixed`` regions (already
    stored) keep all they cover and receive nothing; gaps count only inside ``containers``
    when there are any (the parents). Returns the new geometries and the changes made.
    """
    n = len(geoms)
    fixed_geoms = [g for g, _ in fixed]
    everything = list(geoms) + fixed_geoms
    names = list(labels) + [label for _, label in fixed]
    rank = {i: pos for pos, i in enumerate(order)}
    rank.update({n + k: -1 for k in range(len(fixed_geoms))})

    linework = shapely.union_all(shapely.boundary(np.asarray(
        everything + list(containers), dtype=object)))
    faces = np.asarray(list(shapely.get_parts(shapely.polygonize(
        list(shapely.get_parts(linework))))), dtype=object)
    if len(faces) == 0:
        return list(geoms), []
    points = shapely.point_on_surface(faces)
    owners: dict[int, list[int]] = defaultdict(list)
    face_idx, geom_idx = shapely.STRtree(np.asarray(everything, dtype=object)).query(
        points, predicate="intersects")
    for f, g in zip(face_idx, geom_idx, strict=True):
        owners[int(f)].append(int(g))
    face_areas = areas_m2(faces, crs)

    changes: list[dict] = []
    taken: dict[tuple[int, int], list[int]] = defaultdict(list)
    faces_of: dict[int, list[int]] = defaultdict(list)
    gaps: list[int] = []
    for f in tqdm(range(len(faces)), desc="settling overlaps", unit="face", disable=not progress):
        holders = sorted(owners.get(f, []), key=rank.get)
        if not holders:
            gaps.append(f)
            continue
        faces_of[holders[0]].append(f)
        for loser in holders[1:]:
            if loser < n:
                taken[(holders[0], loser)].append(f)
    noise = {"change": "rounding_overlaps_settled", "pairs": 0, "area_m2": 0.0}
    for (winner, loser), fs in sorted(taken.items()):
        area = float(face_areas[fs].sum())
        if area < NOISE_M2:
            noise["pairs"] += 1
            noise["area_m2"] += area
            continue
        changes.append({"change": "overlap_given_to_neighbour", "kept_by": names[winner],
                        "removed_from": names[loser], "area_m2": round(area, 1),
                        "at": _point(shapely.union_all(faces[fs]))})
    if noise["pairs"]:
        changes.append({**noise, "area_m2": round(noise["area_m2"], 3), "message":
                        f"{noise['pairs']} pairs of neighbours overlapped by less than "
                        f"{NOISE_M2} m² each (rounding); each overlap went to one of them."})

    if containers:
        inside = shapely.STRtree(np.asarray(list(containers), dtype=object)).query(
            points[gaps], predicate="intersects")[0] if gaps else []
        gaps = [gaps[int(i)] for i in sorted(set(inside.tolist()))] if len(inside) else []
    rebuilt = [shapely.union_all(faces[faces_of[i]]) if faces_of[i] else shapely.Polygon()
               for i in range(n)]
    areas = areas_m2(rebuilt, crs) if n else np.zeros(0)
    tree = shapely.STRtree(np.asarray(rebuilt, dtype=object))
    crumbs = {"change": "rounding_slivers_filled", "slivers": 0, "area_m2": 0.0}
    for f in gaps:
        face = faces[f]
        touching = [int(k) for k in tree.query(face, predicate="intersects")]
        touching = [k for k in touching if _shared_length(face, rebuilt[k]) > 0]
        if not touching or face_areas[f] > SLIVER_SHARE * min(areas[k] for k in touching):
            continue
        best = max(touching, key=lambda k: (_shared_length(face, rebuilt[k]), -rank[k]))
        faces_of[best].append(f)
        if face_areas[f] < NOISE_M2:
            crumbs["slivers"] += 1
            crumbs["area_m2"] += float(face_areas[f])
            continue
        changes.append({"change": "sliver_filled", "given_to": names[best],
                        "area_m2": round(float(face_areas[f]), 1), "at": _point(face)})
    if crumbs["slivers"]:
        changes.append({**crumbs, "area_m2": round(crumbs["area_m2"], 3), "message":
                        f"{crumbs['slivers']} slivers under {NOISE_M2} m² each (rounding) "
                        "were given to the neighbour sharing most of their edge."})

    result = []
    for i in range(n):
        if faces_of[i]:
            result.append(make_polygonal_valid(shapely.union_all(faces[faces_of[i]])))
        else:
            result.append(shapely.MultiPolygon())
    return result, changes


def _shared_length(a: BaseGeometry, b: BaseGeometry) -> float:
    return float(shapely.length(shapely.intersection(a.boundary, b.boundary)))
