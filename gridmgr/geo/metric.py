"""Measuring in metres: an equal-area projection centred on the data, and polygon clean-up."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import shapely
from pyproj import CRS, Transformer
from shapely.geometry.base import BaseGeometry


def equal_area_crs(geoms) -> CRS:
    """A Lambert azimuthal equal-area CRS centred on the WGS 84 geometries' bounding box."""
    minx, miny, maxx, maxy = shapely.total_bounds(np.asarray(geoms, dtype=object))
    lon, lat = (minx + maxx) / 2, (miny + maxy) / 2
    return CRS.from_proj4(f"+proj=laea +lat_0={lat:.6f} +lon_0={lon:.6f} +datum=WGS84 +units=m")


@lru_cache(maxsize=32)
def _from_wgs84(crs: CRS) -> Transformer:
    return Transformer.from_crs(4326, crs, always_xy=True)


def to_metric(geoms, crs: CRS):
    """WGS 84 geometries (array or single) projected into ``crs``."""
    tr = _from_wgs84(crs)

    def project(xy: np.ndarray) -> np.ndarray:
        x, y = tr.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geoms, project)


def areas_m2(geoms, crs: CRS | None = None) -> np.ndarray:
    """Areas in square metres of WGS 84 geometries (equal-area projection, float array)."""
    arr = np.atleast_1d(np.asarray(geoms, dtype=object))
    if len(arr) == 0:
        return np.zeros(0)
    crs = crs or equal_area_crs(arr)
    return shapely.area(to_metric(arr, crs))


def polygonal(geom: BaseGeometry | None) -> BaseGeometry:
    """The polygonal part of a geometry (lines and points left by make_valid are dropped)."""
    if geom is None or geom.is_empty:
        return shapely.MultiPolygon()
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
    if not parts:
        return shapely.MultiPolygon()
    # Nested collections: flatten again so every part is a Polygon.
    polys = [q for p in parts for q in shapely.get_parts(p)]
    return polys[0] if len(polys) == 1 else shapely.MultiPolygon(polys)


def make_polygonal_valid(geom: BaseGeometry) -> BaseGeometry:
    """``geom`` made valid keeping the area its shells enclose, polygonal parts only."""
    if geom.is_valid:
        return polygonal(geom)
    return polygonal(shapely.make_valid(geom, method="structure", keep_collapsed=False))
