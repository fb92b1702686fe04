"""WGS 84 inside, GCJ-02 and BD-09 (the offset systems of Chinese web maps) accepted on entry.

Conversions are prcoords' (a maintained, public-domain implementation); the inverse
transforms use its iterative ("bored") variants, accurate to well under a metre.
"""

from __future__ import annotations

import numpy as np
import prcoords
import shapely
from shapely.geometry.base import BaseGeometry

from gridmgr.errors import InvalidInput

COORD_SYSTEMS = ("wgs84", "gcj02", "bd09")

_TO_WGS84 = {
    "gcj02": prcoords.gcj_wgs_bored,
    "bd09": prcoords.bd_wgs_bored,
}


def check_coord_sys(coord_sys: str) -> str:
    """The coordinate system name, normalised; InvalidInput (``bad_coord_sys``) if unknown."""
    name = (coord_sys or "").strip().lower().replace("-", "").replace("_", "")
    if name not in COORD_SYSTEMS:
        raise InvalidInput(
            f"Unknown coordinate system {coord_sys!r}; use one of {', '.join(COORD_SYSTEMS)}.",
            code="bad_coord_sys", coord_sys=coord_sys, allowed=list(COORD_SYSTEMS))
    return name


def _in_china(lon: float, lat: float) -> bool:
    # Outside China the offsets are not applied by the map providers either.
    return prcoords.sanity_in_china_p(prcoords.Coords(lat, lon))


def to_wgs84(lon: float, lat: float, coord_sys: str) -> tuple[float, float]:
    """(lon, lat) given in ``coord_sys`` (wgs84, gcj02, bd09) as WGS 84 (lon, lat)."""
    name = check_coord_sys(coord_sys)
    if name == "wgs84" or not _in_china(lon, lat):
        return float(lon), float(lat)
    out = _TO_WGS84[name](prcoords.Coords(lat, lon), check_china=False)
    return float(out.lon), float(out.lat)


def from_wgs84(lon: float, lat: float, coord_sys: str) -> tuple[float, float]:
    """WGS 84 (lon, lat) expressed in ``coord_sys`` (for clients that draw on Chinese maps)."""
    name = check_coord_sys(coord_sys)
    if name == "wgs84" or not _in_china(lon, lat):
        return float(lon), float(lat)
    fwd = prcoords.wgs_gcj if name == "gcj02" else prcoords.wgs_bd
    out = fwd(prcoords.Coords(lat, lon), check_china=False)
    return float(out.lon), float(out.lat)


def coords_to_wgs84(xy: np.ndarray, coord_sys: str) -> np.ndarray:
    """An (N, 2) array of lon/lat in ``coord_sys`` converted to WGS 84."""
    name = check_coord_sys(coord_sys)
    xy = np.asarray(xy, dtype=float)
    if name == "wgs84" or len(xy) == 0:
        return xy.copy()
    out = np.empty_like(xy)
    for i, (lon, lat) in enumerate(xy):
        out[i] = to_wgs84(lon, lat, name)
    return out


def transform_geometry(geom: BaseGeometry, coord_sys: str) -> BaseGeometry:
    """A geometry (or array of them) in ``coord_sys`` converted vertex by vertex to WGS 84."""
    name = check_coord_sys(coord_sys)
    if name == "wgs84":
        return geom
    return shapely.transform(geom, lambda xy: coords_to_wgs84(xy, name))
