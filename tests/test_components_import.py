"""An administrator loads the city's component inventory (部件) from a file."""

from __future__ import annotations

import json

import prcoords
from dispatch_world import POINT_A, POINT_B, build_city
from sqlalchemy import text

from gridmgr.categories.operations import load_default_catalogue
from gridmgr.cli import main
from gridmgr.extensions import db

LAMP = "C0111"


def _city() -> None:
    build_city()
    load_default_catalogue()


def _count(table: str) -> int:
    return db.session.scalar(text(f"SELECT count(*) FROM {table}"))


def test_a_file_with_bad_rows_is_refused_naming_each_row_and_nothing_is_imported(
        runner, app_ctx, tmp_path):
    _city()
    lon, lat = POINT_A
    path = tmp_path / "lamps.csv"
    path.write_text(
        "标识码,名称,类别,权属单位,经度,纬度\n"
        f"1101010111000001,好路灯,{LAMP},市政管理委员会,{lon},{lat}\n"      # row 1: good
        f"11010101110001,短编码,{LAMP},,{lon},{lat}\n"                      # row 2: structure
        f"3201010111000002,外县路灯,{LAMP},,{lon},{lat}\n"                  # row 3: county
        f"1101019999000003,怪部件,C9999,,{lon},{lat}\n"                     # row 4: subclass
        f"1101010111000005,重复甲,{LAMP},,{lon},{lat}\n"                    # row 5: duplicate
        f"1101010111000005,重复乙,{LAMP},,{lon},{lat}\n"                    # row 6: duplicate
        f"1101010111000007,城外路灯,{LAMP},,121.47,31.23\n",                # row 7: outside
        encoding="utf-8")

    refused = runner.invoke(main, args=["components", "import", str(path)])

    assert refused.exit_code == 1
    out = refused.output
    assert "invalid_components" in out and "Nothing was changed" in out
    assert "bad_code: row 2 (短编码)" in out
    assert "county_mismatch: row 3 (外县路灯)" in out and "county 110101" in out
    assert "unknown_category: row 4 (怪部件)" in out
    assert "duplicate_code: code 1101010111000005 is used by rows 5, 6" in out
    assert "outside_city: row 7 (城外路灯)" in out
    assert "row 1 " not in out
    assert _count("components") == 0 and _count("component_history") == 0


def test_a_good_file_imports_with_codes_assigned_and_its_components_answer_by_bbox(
        runner, app_ctx, tmp_path, client):
    _city()
    gcj = prcoords.wgs_gcj(prcoords.Coords(POINT_B[1], POINT_B[0]))
    features = [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": list(POINT_A)},
         "properties": {"name": "解放路1号路灯", "category": LAMP, "owner": "供电公司",
                        "maintainer": "路灯所", "department": "市政管理委员会", "state": "完好"}},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [gcj.lon, gcj.lat]},
         "properties": {"name": "解放路2号路灯", "category": LAMP, "state": "破损",
                        "code": "1101010111000042"}},
        {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [
            [116.3002, 39.9002], [116.3008, 39.9002]]},
         "properties": {"name": "护栏一段", "category": "C0203", "state": "intact"}},
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[
            [116.3011, 39.9001], [116.3014, 39.9001], [116.3014, 39.9003],
            [116.3011, 39.9003], [116.3011, 39.9001]]]},
         "properties": {"name": "街角绿地", "category": "C0402"}},
    ]
    path = tmp_path / "components.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}),
                    encoding="utf-8")

    dry = runner.invoke(main, args=["components", "import", str(path), "--coord-sys", "gcj02",
                                    "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would import 4 components: 4 new" in dry.output
    assert _count("components") == 0

    done = runner.invoke(main, args=["components", "import", str(path), "--coord-sys", "gcj02"])
    assert done.exit_code == 0, done.output
    assert "imported 4 components: 4 new, 0 updated, 3 codes assigned" in done.output
    rows = db.session.execute(text(
        "SELECT c.code, c.name, c.state, c.grid_code, c.owner, d.name AS owner_department, "
        "GeometryType(c.geom) AS kind FROM components c "
        "LEFT JOIN departments d ON d.id = c.owner_department_id ORDER BY c.code")).all()
    by_name = {r.name: r for r in rows}
    # The lamp with a code keeps it; the other lamp continues its county's serials.
    assert by_name["解放路2号路灯"].code == "1101010111000042"
    assert by_name["解放路1号路灯"].code == "1101010111000043"
    assert by_name["护栏一段"].code == "1101010203000001"
    assert by_name["街角绿地"].code == "1101010402000001"
    assert by_name["解放路1号路灯"].owner_department == "供电公司"
    assert by_name["解放路2号路灯"].state == "damaged"
    # Converted from GCJ-02: it stands in grid B, as the WGS 84 point does.
    assert by_name["解放路2号路灯"].grid_code == "110101001001002"
    assert {r.kind for r in rows} == {"POINT", "LINESTRING", "POLYGON"}
    assert _count("component_history") == 4

    again = runner.invoke(main, args=["components", "import", str(path), "--coord-sys", "gcj02"])
    assert again.exit_code == 0, again.output
    assert _count("components") == 7  # rows without codes are new components each time


def test_an_inventory_exported_as_json_lines_imports_as_its_csv_would_and_a_bad_line_is_named(
        runner, app_ctx, tmp_path):
    _city()
    lon, lat = POINT_A
    path = tmp_path / "lamps.jsonl"
    lines = [{"名称": "一号灯", "类别": LAMP, "权属单位": "供电公司", "经度": lon, "纬度": lat,
              "灯杆高度": 8},
             {"name": "二号灯", "category": "0111", "state": "破损", "lon": lon + 0.0001,
              "lat": lat}]
    # The same reader as the history import's: a line that is not an object is refused by
    # its number, and nothing is written.
    path.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n[1, 2]\n",
                    encoding="utf-8")
    refused = runner.invoke(main, args=["components", "import", str(path)])
    assert refused.exit_code == 1
    assert "lamps.jsonl line 3 is not a JSON object" in refused.output
    assert _count("components") == 0

    path.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines[:1]) + "\n\n",
                    encoding="utf-8")
    done = runner.invoke(main, args=["components", "import", str(path)])
    assert done.exit_code == 0, done.output
    assert "imported 1 components: 1 new, 0 updated, 1 codes assigned" in done.output
    row = db.session.execute(text(
        "SELECT c.name, c.state, d.name AS owner_department, c.properties FROM components c "
        "LEFT JOIN departments d ON d.id = c.owner_department_id")).one()
    assert (row.name, row.state, row.owner_department) == ("一号灯", "intact", "供电公司")
    assert row.properties == {"灯杆高度": 8}
