"""Laying out streets and communities inside a real district boundary, for demos and benchmarks.

Voronoi cells of seed points, clipped to the parent, computed in the parent's UTM zone. The
layout is deterministic: the same parent and seeds give the same polygons, so loading a demo
twice changes nothing.
"""

from __future__ import annotations

import numpy as np
import pyproj
import shapely
from shapely.geometry.base import BaseGeometry


def _utm(geom: BaseGeometry) -> pyproj.CRS:
    lon, lat = geom.centroid.x, geom.centroid.y
    return pyproj.CRS.from_epsg((32600 if lat >= 0 else 32700) + int((lon + 180) // 6) % 60 + 1)


def _project(geoms, src, dst):
    tr = pyproj.Transformer.from_crs(src, dst, always_xy=True)
    return shapely.transform(geoms, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))


def voronoi_split(parent: BaseGeometry, seeds_lonlat: np.ndarray) -> list[BaseGeometry | None]:
    """The parent (WGS 84) cut into Voronoi cells of the seeds, in seed order (None: no area).

    Each returned polygon is a cell clipped to the parent, in WGS 84, on a 1 mm grid so that
    neighbours share their edges exactly.
    """
    crs = _utm(parent)
    wgs = pyproj.CRS.from_epsg(4326)
    metric_parent = shapely.set_precision(
        _project(shapely.segmentize(parent, 0.0001), wgs, crs), 0.001)
    tr = pyproj.Transformer.from_crs(wgs, crs, always_xy=True)
    sx, sy = tr.transform(seeds_lonlat[:, 0], seeds_lonlat[:, 1])
    seeds = shapely.points(np.column_stack([sx, sy]))
    cells = shapely.get_parts(shapely.voronoi_polygons(
        shapely.multipoints(seeds), extend_to=metric_parent.envelope.buffer(1000)))
    # voronoi_polygons does not keep the input order: match each cell to its seed.
    tree = shapely.STRtree(cells)
    seed_idx, cell_idx = tree.query(seeds, predicate="within")
    ordered = np.empty(len(seeds), dtype=object)
    ordered[seed_idx] = cells[cell_idx]
    clipped = shapely.intersection(ordered, metric_parent, grid_size=0.001)
    out: list[BaseGeometry | None] = []
    for piece in clipped:
        polygons = [p for p in shapely.get_parts(piece) if p.geom_type == "Polygon" and p.area > 1]
        out.append(_project(shapely.multipolygons(polygons), crs, wgs) if polygons else None)
    return out


def seeds_inside(parent: BaseGeometry, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` well-spread seed points (lon, lat) inside the parent: the best of random draws."""
    minx, miny, maxx, maxy = parent.bounds
    shapely.prepare(parent)
    chosen: list[tuple[float, float]] = []
    candidates = np.empty((0, 2))
    while len(candidates) < count * 20:
        draw = np.column_stack([rng.uniform(minx, maxx, count * 40),
                                rng.uniform(miny, maxy, count * 40)])
        inside = shapely.contains_xy(parent, draw[:, 0], draw[:, 1])
        candidates = np.vstack([candidates, draw[inside]])
    # Farthest-point sampling spreads the seeds evenly over the parent.
    chosen.append(tuple(candidates[0]))
    distance = np.hypot(*(candidates - candidates[0]).T)
    for _ in range(count - 1):
        k = int(np.argmax(distance))
        chosen.append(tuple(candidates[k]))
        distance = np.minimum(distance, np.hypot(*(candidates - candidates[k]).T))
    return np.array(chosen)
