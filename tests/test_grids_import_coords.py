"""Coordinates from Chinese web maps (GCJ-02, BD-09) come back to WGS 84 within a metre."""

from __future__ import annotations

import prcoords
import pytest
from shapely.geometry import Polygon

from gridmgr.errors import InvalidInput
from gridmgr.geo.coords import COORD_SYSTEMS, from_wgs84, to_wgs84, transform_geometry

TIANANMEN = (116.397128, 39.916527)  # WGS 84 lon, lat


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    return prcoords.Coords(a[1], a[0]).distance(prcoords.Coords(b[1], b[0]))


def test_a_beijing_point_read_from_an_amap_screen_returns_to_wgs84():
    gcj = prcoords.wgs_gcj(prcoords.Coords(TIANANMEN[1], TIANANMEN[0]))
    # The published offset in Beijing is a few hundred metres; the inverse removes it.
    assert 100 < _metres((gcj.lon, gcj.lat), TIANANMEN) < 1000
    assert _metres(to_wgs84(gcj.lon, gcj.lat, "gcj02"), TIANANMEN) < 1.0


def test_a_beijing_point_read_from_a_baidu_screen_returns_to_wgs84():
    bd = prcoords.wgs_bd(prcoords.Coords(TIANANMEN[1], TIANANMEN[0]))
    assert _metres(to_wgs84(bd.lon, bd.lat, "bd09"), TIANANMEN) < 1.0
    assert _metres(from_wgs84(*TIANANMEN, "bd09"), (bd.lon, bd.lat)) < 0.01


def test_wgs84_and_points_outside_china_pass_through_unchanged():
    assert to_wgs84(*TIANANMEN, "wgs84") == TIANANMEN
    assert to_wgs84(-73.9855, 40.758, "gcj02") == (-73.9855, 40.758)


def test_a_boundary_drawn_on_a_gcj02_map_is_moved_vertex_by_vertex():
    wgs = Polygon([(116.39, 39.90), (116.41, 39.90), (116.41, 39.92), (116.39, 39.92)])
    gcj = Polygon([from_wgs84(x, y, "gcj02") for x, y in wgs.exterior.coords])
    back = transform_geometry(gcj, "gcj02")
    for got, want in zip(back.exterior.coords, wgs.exterior.coords, strict=True):
        assert _metres(got, want) < 1.0


def test_an_unknown_coordinate_system_is_refused():
    assert COORD_SYSTEMS == ("wgs84", "gcj02", "bd09")
    with pytest.raises(InvalidInput) as err:
        to_wgs84(116.4, 39.9, "mercator")
    assert err.value.code == "bad_coord_sys"
