"""An administrator generates unit grids inside real boundaries (渝中区, Chongqing)."""

from __future__ import annotations

import json
import math

import numpy as np
import pyproj
import pytest
import shapely
from shapely.geometry import shape
from sqlalchemy import text

from gridmgr.errors import InvalidInput, NotFound
from gridmgr.extensions import db
from gridmgr.grids.cli import grids
from gridmgr.grids.generation import generate_grids

YUZHONG = "500103"
CELL = 40_000  # 渝中区 is ~23 km²: ~600 grids of 4 ha stay under the 999 limit.


def load_yuzhong(data_dir) -> int:
    """Put 渝中区 from the shared Chongqing file in as a district of city ``cq``."""
    features = json.loads((data_dir / "china" / "chongqing_districts.geojson").read_text())
    feature = next(f for f in features["features"] if str(f["properties"]["code"]) == YUZHONG)
    geom = shapely.make_valid(shape(feature["geometry"]))
    city_id = db.session.execute(text(
        "INSERT INTO cities (slug, name, timezone) VALUES ('cq', '重庆', 'Asia/Shanghai') "
        "RETURNING id")).scalar_one()
    db.session.execute(text(
        "INSERT INTO regions (city_id, level, code, name, geom, area_m2) "
        "SELECT :city, 'district', :code, '渝中区', g, ST_Area(g::geography) "
        "FROM (SELECT ST_Multi(ST_GeomFromText(:wkt, 4326)) AS g) s"),
        {"city": city_id, "code": YUZHONG, "wkt": geom.wkt})
    db.session.commit()
    return city_id


def grid_rows():
    return db.session.execute(text(
        "SELECT id, code, md5(ST_AsBinary(geom)) AS geom_md5, updated_at, area_m2 "
        "FROM regions WHERE level = 'grid' ORDER BY code")).all()


def test_grids_cover_the_district_without_overlaps_in_documented_order(app_ctx, data_dir):
    load_yuzhong(data_dir)
    result = generate_grids(within="district", cell_area_m2=CELL)

    count = result.generated[YUZHONG]
    assert 500 < count < 700
    cover = db.session.execute(text("""
        SELECT d.area_m2 AS parent_area, sum(g.area_m2) AS grid_area,
               ST_Area(ST_SymDifference(d.geom, ST_Union(g.geom))::geography) AS mismatch
        FROM regions d JOIN regions g ON g.parent_id = d.id AND g.level = 'grid'
        WHERE d.code = :code GROUP BY d.id"""), {"code": YUZHONG}).one()
    assert cover.grid_area == pytest.approx(cover.parent_area, rel=0.001)
    assert cover.mismatch < 0.001 * cover.parent_area
    overlap = db.session.execute(text("""
        SELECT coalesce(sum(ST_Area(ST_Intersection(a.geom, b.geom)::geography)), 0)
        FROM regions a JOIN regions b
          ON a.level = 'grid' AND b.level = 'grid' AND a.id < b.id AND a.geom && b.geom
         AND ST_Intersects(a.geom, b.geom)""")).scalar_one()
    assert overlap < 1.0  # square metres, over ~600 grids: shared edges only

    rows = grid_rows()
    codes = [r.code for r in rows]
    assert codes == [f"{YUZHONG}000000{n:03d}" for n in range(1, count + 1)]
    assert all(len(c) == 15 and c.isdigit() for c in codes)
    # Slivers were merged: no grid is smaller than 30 % of a cell.
    assert min(r.area_m2 for r in rows) >= 0.3 * CELL * 0.999

    # Documented order: rows of the lattice from the north, each row west to east. Whole
    # (unclipped) cells show their lattice cell directly.
    to_utm = pyproj.Transformer.from_crs(4326, 32648, always_xy=True)
    side = math.sqrt(CELL)
    keys = []
    for wkb in db.session.scalars(text(
            "SELECT ST_AsBinary(geom) FROM regions WHERE level = 'grid' ORDER BY code")):
        geom = shapely.transform(shapely.from_wkb(bytes(wkb)),
                                 lambda xy: np.column_stack(to_utm.transform(xy[:, 0], xy[:, 1])))
        if abs(geom.area - CELL) < 1:
            c = geom.centroid
            keys.append((-math.floor(c.y / side), math.floor(c.x / side)))
    assert len(keys) > 300
    assert keys == sorted(keys)


def test_generating_twice_on_an_unchanged_district_changes_nothing(app_ctx, data_dir, runner):
    load_yuzhong(data_dir)
    first = runner.invoke(grids, args=["generate", "--within", "district",
                                "--cell-area", str(CELL)])
    assert first.exit_code == 0, first.output
    before = grid_rows()

    second = runner.invoke(grids, args=["generate", "--within", "district",
                                 "--cell-area", str(CELL)])
    assert second.exit_code == 0, second.output
    assert "0 grids generated" in second.output and "1 unchanged" in second.output
    db.session.expire_all()
    assert grid_rows() == before


def test_a_changed_district_gets_its_grids_rewritten_under_the_same_codes(app_ctx, data_dir):
    load_yuzhong(data_dir)
    generate_grids(within="district", cell_area_m2=CELL)
    ids_before = dict(db.session.execute(text(
        "SELECT code, id FROM regions WHERE level = 'grid'")).all())
    # The district loses a 300 m strip along its boundary.
    db.session.execute(text(
        "UPDATE regions SET geom = ST_Multi(ST_Buffer(geom::geography, -300)::geometry), "
        "updated_at = now() WHERE code = :code"), {"code": YUZHONG})
    db.session.execute(text("UPDATE regions SET area_m2 = ST_Area(geom::geography) "
                            "WHERE code = :code"), {"code": YUZHONG})
    db.session.commit()

    result = generate_grids(within="district", cell_area_m2=CELL)
    count = result.generated[YUZHONG]
    assert count < len(ids_before) and result.deleted == len(ids_before) - count
    ids_after = dict(db.session.execute(text(
        "SELECT code, id FROM regions WHERE level = 'grid'")).all())
    assert sorted(ids_after) == [f"{YUZHONG}000000{n:03d}" for n in range(1, count + 1)]
    assert all(ids_after[c] == ids_before[c] for c in ids_after)
    outside = db.session.execute(text("""
        SELECT count(*) FROM regions g JOIN regions d ON d.id = g.parent_id
        WHERE g.level = 'grid'
          AND ST_Area(ST_Difference(g.geom, d.geom)::geography) > 1""")).scalar_one()
    assert outside == 0


def test_more_than_999_grids_in_a_parent_is_refused_and_changes_nothing(app_ctx, data_dir,
                                                                      runner):
    load_yuzhong(data_dir)
    generate_grids(within="district", cell_area_m2=CELL)
    before = grid_rows()

    with pytest.raises(InvalidInput) as refused:
        generate_grids(within="district", cell_area_m2=10_000)
    error = refused.value
    assert error.code == "too_many_grids"
    assert "渝中区" in error.message and YUZHONG in error.message
    assert "--cell-area" in error.message
    [parent] = error.details["parents"]
    assert parent["code"] == YUZHONG and parent["count"] > 999
    assert error.details["suggested_cell_area_m2"] > 10_000
    db.session.rollback()
    assert grid_rows() == before

    cli = runner.invoke(grids, args=["generate", "--within", "district"])
    assert cli.exit_code == 1
    assert "too_many_grids" in cli.output and "500103" in cli.output
    db.session.expire_all()
    assert grid_rows() == before


def test_bad_generation_requests_are_refused(app_ctx, data_dir):
    with pytest.raises(InvalidInput) as nothing:
        generate_grids()
    assert nothing.value.code == "no_parents"
    load_yuzhong(data_dir)
    with pytest.raises(InvalidInput) as level:
        generate_grids(within="grid")
    assert level.value.code == "bad_level"
    with pytest.raises(InvalidInput) as area:
        generate_grids(within="district", cell_area_m2=-5)
    assert area.value.code == "bad_cell_area"
    with pytest.raises(NotFound) as unknown:
        generate_grids(within="district", cell_area_m2=CELL, parents=["500199"])
    assert unknown.value.code == "unknown_parent"
    assert db.session.execute(text("SELECT count(*) FROM regions")).scalar_one() == 1


def test_a_parent_with_imported_grids_is_left_alone_and_reported(app_ctx, data_dir):
    city_id = load_yuzhong(data_dir)
    district_id = db.session.scalar(text("SELECT id FROM regions WHERE code = :c"),
                                    {"c": YUZHONG})
    # An inspector's hand-drawn grid around 解放碑, imported rather than generated.
    db.session.execute(text(
        "INSERT INTO regions (city_id, level, code, name, parent_id, geom, area_m2, generated) "
        "SELECT :city, 'grid', :code, '解放碑手绘网格', :parent, g, ST_Area(g::geography), false "
        "FROM (SELECT ST_Multi(ST_MakeEnvelope(106.576, 29.556, 106.578, 29.558, 4326)) g) s"),
        {"city": city_id, "code": f"{YUZHONG}000000001", "parent": district_id})
    db.session.commit()
    before = grid_rows()

    result = generate_grids(within="district", cell_area_m2=CELL)
    assert result.generated == {} and YUZHONG in result.skipped
    assert "not generated" in result.skipped[YUZHONG]
    db.session.expire_all()
    assert grid_rows() == before
