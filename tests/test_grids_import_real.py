"""An administrator loads real boundary files: Chicago, New York and Chongqing."""

from __future__ import annotations

import json

import pytest
import shapely
from sqlalchemy import func, select, text

from gridmgr.errors import InvalidInput
from gridmgr.extensions import db
from gridmgr.geo.metric import areas_m2, make_polygonal_valid
from gridmgr.grids.importing import InvalidBoundaries, import_regions
from gridmgr.grids.locating import OutsideCity, locate
from gridmgr.grids.models import Region
from gridmgr.grids.validation import check_hierarchy

SQFT_M2 = 0.09290304


def _region_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Region))


def test_chicago_without_a_crs_is_refused_and_nothing_is_imported(app_ctx, data_dir):
    with pytest.raises(InvalidInput) as err:
        import_regions(data_dir / "chicago_community_areas" / "Chicago77.shp", "community",
                       name_field="COMMUNITY", code_field="AREA_NUMBE")
    assert err.value.code == "missing_crs"
    assert "--srid" in err.value.message
    assert _region_count() == 0


def test_chicago_with_its_srid_loads_77_areas_of_the_right_size(app_ctx, data_dir):
    result = import_regions(data_dir / "chicago_community_areas" / "Chicago77.shp",
                            "community", srid=3435, name_field="COMMUNITY",
                            code_field="AREA_NUMBE")
    assert len(result.codes) == 77 and result.created == 77
    rows = db.session.execute(select(Region.code, Region.name, Region.area_m2,
                                     Region.properties, Region.source_ref)).all()
    assert len(rows) == 77
    for code, name, area_m2, props, source_ref in rows:
        expected = props["SHAPE_AREA"] * SQFT_M2
        assert abs(area_m2 - expected) / expected < 0.01, (name, area_m2, expected)
        assert code == "000000000" + source_ref.zfill(3)

    loop = locate(-87.6298, 41.8781)
    assert loop.region.code == "000000000032"
    assert loop.region.name == "LOOP"
    assert loop.region.level == "community"


def test_reimporting_chicago_updates_by_code_instead_of_duplicating(app_ctx, data_dir):
    path = data_dir / "chicago_community_areas" / "Chicago77.shp"
    import_regions(path, "community", srid=3435, name_field="COMMUNITY", code_field="AREA_NUMBE")
    ids = dict(db.session.execute(select(Region.code, Region.id)).all())
    again = import_regions(path, "community", srid=3435, name_field="COMMUNITY",
                           code_field="AREA_NUMBE")
    assert (again.created, again.updated) == (0, 77)
    assert dict(db.session.execute(select(Region.code, Region.id)).all()) == ids


def test_new_york_boroughs_from_the_zip_locate_times_square_in_manhattan(app_ctx, data_dir):
    result = import_regions(data_dir / "nyc_boroughs" / "nybb_16a.zip", "district",
                            city="nyc", name_field="BoroName", code_field="BoroCode")
    assert sorted(result.codes) == ["000001", "000002", "000003", "000004", "000005"]
    times_square = locate(-73.9855, 40.7580)
    assert times_square.region.name == "Manhattan"
    assert times_square.region.code == "000001"
    with pytest.raises(OutsideCity) as err:
        locate(-74.03, 40.66)
    assert err.value.code == "outside_city"


CHONGQING_INVALID = {"九龙坡区", "合川区", "大渡口区", "奉节县", "潼南区", "铜梁区", "长寿区"}


def test_chongqing_strict_import_names_every_bad_polygon_and_overlap(app_ctx, data_dir):
    with pytest.raises(InvalidBoundaries) as err:
        import_regions(data_dir / "china" / "chongqing_districts.geojson", "district",
                       city="chongqing", code_field="code", name_field="name")
    problems = err.value.details["problems"]
    invalid = {p["name"] for p in problems if p["problem"] == "invalid_geometry"}
    assert invalid == CHONGQING_INVALID
    assert all(p["reason"] for p in problems if p["problem"] == "invalid_geometry")
    overlaps = [p for p in problems if p["problem"] == "overlap"]
    assert len(overlaps) > 10
    assert all(p["area_m2"] > 1 and len(p["features"]) == 2 for p in overlaps)
    pairs = {frozenset(f.split(": ")[1].split(" [")[0] for f in p["features"]) for p in overlaps}
    assert frozenset({"城口县", "开州区"}) in pairs
    assert _region_count() == 0
    assert db.session.scalar(text("SELECT count(*) FROM cities")) == 0


def test_chongqing_repaired_loads_valid_districts_without_overlaps(app_ctx, data_dir):
    path = data_dir / "china" / "chongqing_districts.geojson"
    result = import_regions(path, "district", city="chongqing", code_field="code",
                            name_field="name", repair=True)
    assert len(result.codes) == 38
    made_valid = {c["feature"].split(": ")[1].split(" [")[0]
                  for c in result.changes if c["change"] == "made_valid"}
    assert made_valid == CHONGQING_INVALID
    assert any(c["change"] == "overlap_given_to_neighbour" for c in result.changes)

    assert db.session.scalar(text("SELECT bool_and(ST_IsValid(geom)) FROM regions"))
    worst = db.session.scalar(text("""
        SELECT coalesce(max(ST_Area(ST_Intersection(a.geom, b.geom)::geography)), 0)
        FROM regions a JOIN regions b ON a.id < b.id AND ST_Intersects(a.geom, b.geom)"""))
    assert worst <= 1.0

    features = json.loads(path.read_text())["features"]
    geoms = [make_polygonal_valid(shapely.geometry.shape(f["geometry"])) for f in features]
    file_area = float(areas_m2(geoms).sum())
    stored = db.session.scalar(text("SELECT sum(area_m2) FROM regions"))
    assert abs(stored - file_area) / file_area < 0.005

    yuzhong = db.session.scalar(select(Region).where(Region.code == "500103"))
    assert yuzhong.name == "渝中区"
    inside = locate(*json.loads(db.session.scalar(
        text("SELECT ST_AsGeoJSON(ST_PointOnSurface(geom)) FROM regions WHERE code = '500103'"))
    )["coordinates"])
    assert inside.region.code == "500103"
    assert check_hierarchy("chongqing").healthy
