"""The shipped catalogue loads (idempotently) with names, departments and limits; imports of
our own format and of Open311 services and service definitions; responsible departments."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from gridmgr.calendar.deadlines import UNITS
from gridmgr.categories import operations as ops
from gridmgr.categories.models import Category, CategoryClass
from gridmgr.cli import main
from gridmgr.errors import InvalidInput, NotFound
from gridmgr.extensions import db
from gridmgr.grids.models import City, Region
from gridmgr.people.models import Department

CLASSES = {"C01": "公用设施", "C02": "道路交通", "C03": "市容环境", "C04": "园林绿化",
           "C05": "房屋土地", "C06": "其他设施", "E01": "市容环境", "E02": "宣传广告",
           "E03": "施工管理", "E04": "突发事件", "E05": "街面秩序"}


def test_the_default_catalogue_has_every_class_and_forty_subclasses(app_ctx):
    report = ops.load_default_catalogue()
    assert report.classes_created == 11
    classes = {c.code: c for c in ops.list_classes()}
    assert {code: c.name_zh for code, c in classes.items()} == CLASSES
    assert all(c.name_en and c.kind == ("component" if c.code[0] == "C" else "event")
               for c in classes.values())
    categories = ops.list_categories()
    assert len(categories) >= 40
    assert {c.category_class.code for c in categories} == set(CLASSES)
    for c in categories:
        assert c.name_zh and c.name_en, c.code
        assert c.department is not None, c.code
        assert c.duplicate_radius_m > 0 and c.duplicate_window_hours > 0
        assert set(c.limits) == set(ops.STAGES), c.code
        assert all(v["unit"] in UNITS and v["amount"] > 0 for v in c.limits.values())
        assert c.code.startswith(c.category_class.code)
    by_code = {c.code: c for c in categories}
    assert by_code["C0101"].name_zh == "上水井盖" and by_code["C0101"].department.name == "供水集团"
    assert by_code["C0103"].name_zh == "雨水井盖"
    assert by_code["C0101"].limits["handle"] == {"amount": 4, "unit": "urgent_hours"}
    for code, name in [("E0101", "暴露垃圾"), ("E0103", "道路不洁"), ("E0301", "违法搭建"),
                       ("E0501", "无照经营游商"), ("E0502", "占道经营"), ("E0201", "乱贴小广告")]:
        assert by_code[code].name_zh == name
    names = {c.name_en for c in categories}
    assert {"Street lamp", "Litter bin", "Street tree"} <= names
    departments = set(db.session.scalars(select(Department.name)))
    assert {"市政管理委员会", "园林绿化局", "城管执法局", "环卫中心", "住建委", "交通委",
            "供水集团", "排水集团", "供电公司"} <= departments


def test_loading_the_defaults_twice_changes_nothing_and_keeps_a_citys_edits(app_ctx, runner):
    first = runner.invoke(main, ["categories", "load-defaults"])
    assert first.exit_code == 0, first.output
    counts = (db.session.scalar(select(func.count(Category.id))),
              db.session.scalar(select(func.count(CategoryClass.id))),
              db.session.scalar(select(func.count(Department.id))))
    ops.update_category("E0101", {"limits": {"handle": {"amount": 2, "unit": "working_hours"}}})
    again = runner.invoke(main, ["categories", "load-defaults"])
    assert again.exit_code == 0, again.output
    assert "0 categories created" in again.output
    assert counts == (db.session.scalar(select(func.count(Category.id))),
                      db.session.scalar(select(func.count(CategoryClass.id))),
                      db.session.scalar(select(func.count(Department.id))))
    assert ops.get_category("E0101").limits == {"handle": {"amount": 2, "unit": "working_hours"}}
    listing = runner.invoke(main, ["categories", "list", "--class", "E05"])
    assert "E0501\tE05\t无照经营游商\tUnlicensed street vendor\t城管执法局" in listing.output


def test_open311_services_become_categories_and_their_groups_classes(app_ctx, runner,
                                                                     data_dir):
    services = json.loads((data_dir / "open311_bloomington_services.json").read_text())
    result = runner.invoke(main, ["categories", "import",
                                  str(data_dir / "open311_bloomington_services.json")])
    assert result.exit_code == 0, result.output
    assert "63 categories created" in result.output
    groups = {s["group"] for s in services}
    classes = {c.name_en: c for c in ops.list_classes()}
    assert set(classes) == groups
    assert all(c.kind == "event" for c in classes.values())
    for service in services:
        category = ops.get_category(service["service_code"])
        assert category.name_en == service["service_name"]
        assert category.name_zh == service["service_name"]  # no translation yet
        assert category.category_class.name_en == service["group"]
        assert category.description == (service["description"] or None)
        assert category.limits == ops.OPEN311_LIMITS
    graffiti = ops.get_category("37")
    assert graffiti.name_en == "Graffiti"

    # A translation made later survives a re-import.
    ops.update_category("37", {"name_zh": "涂鸦"})
    again = runner.invoke(main, ["categories", "import",
                                 str(data_dir / "open311_bloomington_services.json")])
    assert again.exit_code == 0
    assert "0 categories created" in again.output and "63 unchanged" in again.output
    assert ops.get_category("37").name_zh == "涂鸦"


def test_an_open311_service_definition_becomes_the_categorys_extra_questions(app_ctx, runner,
                                                                             data_dir):
    runner.invoke(main, ["categories", "import",
                         str(data_dir / "open311_bloomington_services.json")])
    result = runner.invoke(main, ["categories", "import",
                                  str(data_dir / "open311_bloomington_service_69.json")])
    assert result.exit_code == 0, result.output
    assert "extra questions set for 69" in result.output
    attributes = ops.get_category("69").attributes
    assert [a["code"] for a in attributes] == ["issue"]
    assert attributes[0]["datatype"] == "singlevaluelist"
    assert [v["key"] for v in attributes[0]["values"]] == [
        "City Maintained Light", "Private Light", "Request for Lights"]


def test_a_definition_for_an_unknown_service_or_a_bad_file_is_refused(app_ctx, runner, tmp_path,
                                                                     data_dir):
    result = runner.invoke(main, ["categories", "import",
                                  str(data_dir / "open311_bloomington_service_69.json")])
    assert result.exit_code != 0 and "category_not_found" in result.output
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"categories": [{"code": "E9901", "class": "E01",
                                               "name_zh": "x", "name_en": "x",
                                               "limits": {"handle": {"amount": 1,
                                                                     "unit": "weeks"}}}],
                               "classes": [{"code": "E01", "kind": "event", "name_zh": "市容环境",
                                            "name_en": "City appearance"}]}))
    result = runner.invoke(main, ["categories", "import", str(bad)])
    assert result.exit_code != 0 and "unknown_unit" in result.output
    assert db.session.scalar(select(func.count(CategoryClass.id))) == 0
    (tmp_path / "junk.json").write_text('{"hello": 1}')
    result = runner.invoke(main, ["categories", "import", str(tmp_path / "junk.json")])
    assert result.exit_code != 0 and "invalid_file" in result.output


def test_limits_are_validated(app_ctx):
    ops.load_default_catalogue()
    before = dict(ops.get_category("C0111").limits)
    cases = [({"repair": {"amount": 1, "unit": "working_days"}}, "unknown_stage"),
             ({"handle": {"amount": 1, "unit": "weeks"}}, "unknown_unit"),
             ({"handle": {"amount": 0, "unit": "working_days"}}, "invalid_limit"),
             ({"handle": {"amount": -2, "unit": "working_days"}}, "invalid_limit"),
             ({"handle": {"amount": "two", "unit": "working_days"}}, "invalid_limit"),
             ({"handle": 3}, "invalid_limit")]
    for limits, code in cases:
        with pytest.raises(InvalidInput) as err:
            ops.update_category("C0111", {"limits": limits})
        assert err.value.code == code
        db.session.rollback()
    assert ops.get_category("C0111").limits == before


def _region(city, code, parent=None):
    level = {6: "district", 9: "street", 12: "community", 15: "grid"}[len(code)]
    region = Region(city_id=city.id, code=code, name=f"R{code}", level=level,
                    parent_id=parent.id if parent else None,
                    geom="SRID=4326;MULTIPOLYGON(((116 39,116.01 39,116.01 39.01,116 39)))",
                    area_m2=1000)
    db.session.add(region)
    db.session.flush()
    return region


def test_a_region_can_name_its_own_responsible_department(app_ctx):
    ops.load_default_catalogue()
    city = City(slug="bj", name="北京", timezone="Asia/Shanghai")
    db.session.add(city)
    db.session.flush()
    district = _region(city, "110101")
    street = _region(city, "110101001", district)
    community = _region(city, "110101001001", street)
    other = _region(city, "110102")
    local = Department(name="东华门街道城管队", city_id=city.id)
    db.session.add(local)
    db.session.commit()
    assert ops.responsible_department("E0501", "110101001001007").name == "城管执法局"
    ops.set_region_department("E0501", street.code, local.id)
    # The street's override applies to its communities and grids, not elsewhere.
    assert ops.responsible_department("E0501", "110101001001007").name == "东华门街道城管队"
    assert ops.responsible_department("E0501", community.code, city.id).id == local.id
    assert ops.responsible_department("E0501", other.code).name == "城管执法局"
    assert ops.responsible_department("E0502", "110101001001007").name == "城管执法局"
    assert ops.responsible_department("E0501", None).name == "城管执法局"
    # The nearest ancestor wins.
    district_dept = Department(name="东城区城管委")
    db.session.add(district_dept)
    db.session.commit()
    ops.set_region_department("E0501", district.code, district_dept.id)
    assert ops.responsible_department("E0501", "110101001001007").id == local.id
    assert ops.responsible_department("E0501", "110101002003004").id == district_dept.id
    assert ops.clear_region_department("E0501", street.code)
    assert ops.responsible_department("E0501", "110101001001007").id == district_dept.id
    with pytest.raises(NotFound):
        ops.set_region_department("E0501", "999999", local.id)
