"""The administrator's commands: ``gridmgr grids import`` and ``gridmgr grids check``."""

from __future__ import annotations

import json

import geopandas as gpd
import prcoords
from shapely.geometry import box
from sqlalchemy import text

from gridmgr.cli import main
from gridmgr.extensions import db
from gridmgr.grids.locating import locate


def test_importing_chicago_from_the_command_line(runner, app_ctx, data_dir):
    path = str(data_dir / "chicago_community_areas" / "Chicago77.shp")
    refused = runner.invoke(main, args=["grids", "import", path, "--level", "community",
                                  "--name-field", "COMMUNITY", "--code-field", "AREA_NUMBE"])
    assert refused.exit_code == 1
    assert "missing_crs" in refused.output and "--srid" in refused.output

    done = runner.invoke(main, args=["grids", "import", path, "--level", "community",
                                     "--srid", "3435", "--name-field", "COMMUNITY",
                                     "--code-field", "AREA_NUMBE", "--city", "chicago"])
    assert done.exit_code == 0, done.output
    assert "imported 77 community regions into chicago: 77 new" in done.output

    check = runner.invoke(main, args=["grids", "check", "--city", "chicago"])
    assert check.exit_code == 0, check.output
    assert "chicago: 77 community" in check.output and "healthy" in check.output


def test_a_strict_import_of_chongqing_lists_every_problem_and_exits_non_zero(
        runner, app_ctx, data_dir):
    path = str(data_dir / "china" / "chongqing_districts.geojson")
    result = runner.invoke(main, args=["grids", "import", path, "--level", "district",
                                 "--code-field", "code", "--name-field", "name"])
    assert result.exit_code == 1
    assert "invalid_boundaries" in result.output
    assert "7 × invalid geometry" in result.output
    assert "九龙坡区" in result.output and "Self-intersection" in result.output
    assert db.session.scalar(text("SELECT count(*) FROM regions")) == 0


def test_check_finds_a_hierarchy_broken_behind_the_importers_back(runner, app_ctx, tmp_path):
    frame = gpd.GeoDataFrame({"name": ["甲区", "乙区"], "code": ["110101", "110102"]},
                             geometry=[box(116.38, 39.90, 116.40, 39.92),
                                       box(116.40, 39.90, 116.42, 39.92)], crs=4326)
    path = tmp_path / "beijing.gpkg"
    frame.to_file(path, driver="GPKG")
    assert runner.invoke(main, args=["grids", "import", str(path), "--level", "district",
                               "--code-field", "code"]).exit_code == 0
    assert runner.invoke(main, args=["grids", "check"]).exit_code == 0

    # Someone widens 乙区 by hand in the database: it now overlaps 甲区.
    db.session.execute(text("""UPDATE regions SET geom = ST_Multi(ST_MakeEnvelope(
        116.39, 39.90, 116.42, 39.92, 4326)) WHERE code = '110102'"""))
    db.session.commit()
    result = runner.invoke(main, args=["grids", "check", "--json"])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["healthy"] is False
    [overlap] = report["problems"]
    assert overlap["codes"] == ["110101", "110102"] and overlap["area_m2"] > 1_000_000


def test_a_district_drawn_on_a_gcj02_map_is_stored_in_wgs84(runner, app_ctx, tmp_path):
    wgs = box(106.56, 29.55, 106.58, 29.57)
    corners = [prcoords.wgs_gcj(prcoords.Coords(y, x)) for x, y in wgs.exterior.coords]
    gcj = gpd.GeoSeries.from_wkt(
        ["POLYGON((" + ", ".join(f"{c.lon} {c.lat}" for c in corners) + "))"], crs=4326)
    path = tmp_path / "gcj.geojson"
    gpd.GeoDataFrame({"name": ["渝中区"], "code": ["500103"]}, geometry=gcj).to_file(path)
    result = runner.invoke(main, args=["grids", "import", str(path), "--level", "district",
                                 "--code-field", "code", "--coord-sys", "gcj02"])
    assert result.exit_code == 0, result.output
    # The centre of the true (WGS 84) square is inside; the offset is several hundred metres.
    assert locate(106.57, 29.56).region.code == "500103"
    moved = db.session.scalar(text("""SELECT ST_Distance(ST_Centroid(geom)::geography,
        ST_SetSRID(ST_MakePoint(106.57, 29.56), 4326)::geography) FROM regions"""))
    assert moved < 1.0


def test_check_warns_when_a_community_nears_the_999_grid_limit(runner, app_ctx, tmp_path):
    frame = gpd.GeoDataFrame({"name": ["大社区"], "code": ["500103001001"]},
                             geometry=[box(106.50, 29.50, 106.60, 29.51)], crs=4326)
    path = tmp_path / "community.geojson"
    frame.to_file(path)
    assert runner.invoke(main, args=["grids", "import", str(path), "--level", "community",
                                     "--code-field", "code", "--city", "cq"]).exit_code == 0
    # 950 strips of 0.0001° side by side, as a generator with too small a cell would make.
    db.session.execute(text("""
        INSERT INTO regions (city_id, level, code, name, parent_id, geom, area_m2)
        SELECT p.city_id, 'grid', p.code || lpad(i::text, 3, '0'), 'grid ' || i, p.id,
               ST_Multi(ST_MakeEnvelope(106.50 + (i - 1) * 0.0001, 29.50,
                                        106.50 + i * 0.0001, 29.51, 4326)), 1000
        FROM regions p, generate_series(1, 950) AS i WHERE p.code = '500103001001'"""))
    db.session.commit()
    result = runner.invoke(main, args=["grids", "check", "--json"])
    report = json.loads(result.output)
    assert result.exit_code == 0, report["problems"]
    near = [w for w in report["warnings"] if w["warning"] == "near_grid_limit"]
    assert near == [{"warning": "near_grid_limit", "code": "500103001001", "name": "大社区",
                     "grids": 950, "limit": 999}]
    assert report["counts"] == {"cq": {"community": 1, "grid": 950}}
