"""An administrator imports small hand-made boundary files and is told exactly what is wrong."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select, text

from gridmgr.errors import InvalidInput
from gridmgr.extensions import db
from gridmgr.grids.importing import InvalidBoundaries, import_regions
from gridmgr.grids.models import City, Region

# Squares of about 1.1 km near 渝中区 (lon/lat degrees).
X0, Y0, D = 106.50, 29.55, 0.01


def _square(x: float, y: float, d: float = D) -> list:
    return [[[x, y], [x + d, y], [x + d, y + d], [x, y + d], [x, y]]]


def _feature(coords: list, **props) -> dict:
    return {"type": "Feature", "properties": props,
            "geometry": {"type": "Polygon", "coordinates": coords}}


def _write(tmp_path, name: str, features: list[dict]) -> str:
    path = tmp_path / name
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features},
                               ensure_ascii=False))
    return str(path)


def _nothing_written() -> bool:
    regions = db.session.scalar(select(func.count()).select_from(Region))
    cities = db.session.scalar(select(func.count()).select_from(City))
    return regions == 0 and cities == 0


def test_a_self_intersecting_district_is_named_with_the_reason(app_ctx, tmp_path):
    bowtie = [[[X0, Y0], [X0 + D, Y0 + D], [X0 + D, Y0], [X0, Y0 + D], [X0, Y0]]]
    path = _write(tmp_path, "districts.geojson", [
        _feature(_square(X0 - D, Y0), name="好区", code="500101"),
        _feature(bowtie, name="坏区", code="500102"),
    ])
    with pytest.raises(InvalidBoundaries) as err:
        import_regions(path, "district", code_field="code")
    assert err.value.code == "invalid_boundaries"
    [problem] = err.value.details["problems"]
    assert problem["problem"] == "invalid_geometry"
    assert problem["name"] == "坏区" and problem["row"] == 2
    assert "Self-intersection" in problem["reason"]
    assert _nothing_written()


def test_repair_makes_the_bowtie_valid_and_says_so(app_ctx, tmp_path):
    bowtie = [[[X0, Y0], [X0 + D, Y0 + D], [X0 + D, Y0], [X0, Y0 + D], [X0, Y0]]]
    path = _write(tmp_path, "districts.geojson", [_feature(bowtie, name="坏区", code="500102")])
    result = import_regions(path, "district", code_field="code", repair=True)
    assert [c["change"] for c in result.changes] == ["made_valid"]
    assert db.session.scalar(text("SELECT ST_IsValid(geom) FROM regions WHERE code='500102'"))


def test_overlapping_siblings_are_named_in_pairs_with_the_overlap_area(app_ctx, tmp_path):
    path = _write(tmp_path, "streets.geojson", [
        _feature(_square(X0, Y0), name="东街道", code="1"),
        _feature(_square(X0 + D / 2, Y0), name="西街道", code="2"),
        _feature(_square(X0 + 3 * D, Y0), name="远街道", code="3"),
    ])
    with pytest.raises(InvalidBoundaries) as err:
        import_regions(path, "district", code_field="code")
    [problem] = err.value.details["problems"]
    assert problem["problem"] == "overlap"
    assert [f.split(": ")[1].split(" [")[0] for f in problem["features"]] == ["东街道", "西街道"]
    # Half a 0.01° square at 29.55° N: about 0.5 × 1,113 m × 968 m.
    assert 520_000 < problem["area_m2"] < 560_000
    assert _nothing_written()


def test_repair_gives_an_overlap_to_one_neighbour_and_loses_no_ground(app_ctx, tmp_path):
    path = _write(tmp_path, "districts.geojson", [
        _feature(_square(X0 + D / 2, Y0), name="西区", code="2"),
        _feature(_square(X0, Y0), name="东区", code="1"),
    ])
    result = import_regions(path, "district", code_field="code", repair=True)
    [change] = result.changes
    assert change["change"] == "overlap_given_to_neighbour"
    assert change["kept_by"].endswith("东区 [1]") and change["removed_from"].endswith("西区 [2]")
    row = db.session.execute(text("""
        SELECT ST_Area(ST_Union(geom)::geography) AS total, sum(area_m2) AS parts,
               max(ST_Area(geom::geography)) FILTER (WHERE code = '000001') AS kept
        FROM regions""")).one()
    assert abs(row.total - row.parts) < 1.0
    assert row.kept == pytest.approx(row.parts * 2 / 3, rel=0.001)


def test_a_duplicate_code_names_both_features(app_ctx, tmp_path):
    path = _write(tmp_path, "districts.geojson", [
        _feature(_square(X0, Y0), name="甲区", code="500103"),
        _feature(_square(X0 + D, Y0), name="乙区", code="500104"),
        _feature(_square(X0 + 2 * D, Y0), name="丙区", code="500103"),
    ])
    with pytest.raises(InvalidBoundaries) as err:
        import_regions(path, "district", code_field="code")
    [problem] = err.value.details["problems"]
    assert problem["problem"] == "duplicate_code" and problem["code"] == "500103"
    assert [f["name"] for f in problem["features"]] == ["甲区", "丙区"]
    assert _nothing_written()


def test_an_empty_file_is_refused(app_ctx, tmp_path):
    path = _write(tmp_path, "empty.geojson", [])
    with pytest.raises(InvalidInput) as err:
        import_regions(path, "district")
    assert err.value.code == "empty_file"
    assert "no features" in err.value.message
    assert _nothing_written()


def test_a_csv_is_refused_as_not_spatial(app_ctx, tmp_path):
    path = tmp_path / "districts.csv"
    path.write_text("code,name\n500103,渝中区\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as err:
        import_regions(path, "district", code_field="code")
    assert err.value.code == "not_spatial"
    assert _nothing_written()


def test_a_missing_file_and_an_unknown_field_are_refused(app_ctx, tmp_path):
    with pytest.raises(InvalidInput) as err:
        import_regions(tmp_path / "nowhere.shp", "district")
    assert err.value.code == "file_not_found"
    path = _write(tmp_path, "d.geojson", [_feature(_square(X0, Y0), name="甲区", code="1")])
    with pytest.raises(InvalidInput) as err:
        import_regions(path, "district", code_field="CODE")
    assert err.value.code == "bad_field" and "code" in err.value.message
    assert _nothing_written()


def test_streets_find_their_district_and_get_serials_west_to_east(app_ctx, tmp_path):
    districts = _write(tmp_path, "d.geojson", [
        _feature(_square(X0, Y0, 2 * D), name="渝中区", code="500103")])
    import_regions(districts, "district", city="cq", code_field="code")
    # Two rows of two streets, listed in scrambled order; serials run west→east, north→south.
    streets = _write(tmp_path, "s.geojson", [
        _feature(_square(X0 + D, Y0), name="东南街道"),
        _feature(_square(X0, Y0 + D), name="西北街道"),
        _feature(_square(X0, Y0), name="西南街道"),
        _feature(_square(X0 + D, Y0 + D), name="东北街道"),
    ])
    result = import_regions(streets, "street", city="cq")
    assert result.warnings == []
    rows = db.session.execute(text("""
        SELECT s.code, s.name, p.code AS parent FROM regions s JOIN regions p ON p.id = s.parent_id
        ORDER BY s.code""")).all()
    assert [(r.code, r.name, r.parent) for r in rows] == [
        ("500103001", "西北街道", "500103"), ("500103002", "东北街道", "500103"),
        ("500103003", "西南街道", "500103"), ("500103004", "东南街道", "500103")]


def test_a_street_outside_its_district_is_an_error_and_a_gap_is_a_warning(app_ctx, tmp_path):
    districts = _write(tmp_path, "d.geojson", [
        _feature(_square(X0, Y0, 2 * D), name="渝中区", code="500103")])
    import_regions(districts, "district", city="cq", code_field="code")
    sticking_out = _write(tmp_path, "s.geojson", [
        _feature(_square(X0 + 1.5 * D, Y0), name="出界街道", code="1")])
    with pytest.raises(InvalidBoundaries) as err:
        import_regions(sticking_out, "street", city="cq", code_field="code")
    [problem] = err.value.details["problems"]
    assert problem["problem"] == "outside_parent" and problem["name"] == "出界街道"
    assert problem["area_m2"] > 500_000

    one_corner = _write(tmp_path, "s2.geojson", [
        _feature(_square(X0, Y0), name="角街道", code="7")])
    result = import_regions(one_corner, "street", city="cq", code_field="code")
    assert result.codes == ["500103007"]
    [gap] = result.warnings
    assert gap["warning"] == "gap" and gap["area_m2"] > 3_000_000


def test_communities_name_their_district_and_the_missing_street_level_keeps_000(
        app_ctx, tmp_path):
    districts = _write(tmp_path, "d.geojson", [
        _feature(_square(X0, Y0), name="渝中区", code="500103"),
        _feature(_square(X0 + D, Y0), name="大渡口区", code="500104")])
    import_regions(districts, "district", city="cq", code_field="code")
    communities = _write(tmp_path, "c.geojson", [
        _feature(_square(X0, Y0, D / 2), name="解放碑社区", sq="12", qu="渝中区"),
        _feature(_square(X0 + D, Y0, D / 2), name="新山村社区", sq="3", qu="500104"),
        _feature(_square(X0 + D, Y0 + D / 2, D / 2), name="无名社区", sq="4", qu="沙坪坝区")])
    with pytest.raises(InvalidBoundaries) as err:
        import_regions(communities, "community", city="cq", code_field="sq", parent_field="qu")
    [problem] = err.value.details["problems"]
    assert problem["problem"] == "unknown_parent" and problem["parent_ref"] == "沙坪坝区"

    fixed = _write(tmp_path, "c2.geojson", [
        _feature(_square(X0, Y0, D / 2), name="解放碑社区", sq="12", qu="渝中区"),
        _feature(_square(X0 + D, Y0, D / 2), name="新山村社区", sq="3", qu="500104")])
    result = import_regions(fixed, "community", city="cq", code_field="sq", parent_field="qu")
    assert sorted(result.codes) == ["500103000012", "500104000003"]
    props = db.session.scalar(select(Region.properties).where(Region.code == "500103000012"))
    assert props == {"name": "解放碑社区", "sq": "12", "qu": "渝中区"}


def test_a_file_of_points_is_refused_because_boundaries_are_areas(app_ctx, tmp_path):
    path = _write(tmp_path, "points.geojson", [{
        "type": "Feature", "properties": {"name": "解放碑"},
        "geometry": {"type": "Point", "coordinates": [106.577, 29.557]}}])
    with pytest.raises(InvalidInput) as err:
        import_regions(path, "district")
    assert err.value.code == "no_polygons"
    assert _nothing_written()
