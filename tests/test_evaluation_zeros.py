"""A director reads the month's tables and finds every region, department and category, the
quiet ones with zeros: a quiet street is seen to be quiet, not missing."""

from __future__ import annotations

import csv
import io
from zoneinfo import ZoneInfo

import pytest
from cityfixtures import city_fixture  # noqa: F401
from shapely.geometry import MultiPolygon, box
from sqlalchemy import select, text

from gridmgr.categories.models import Category
from gridmgr.cli import main
from gridmgr.evaluation import periods
from gridmgr.evaluation.indicators import COUNTS, RATES
from gridmgr.evaluation.tables import evaluate
from gridmgr.extensions import db
from gridmgr.grids.models import Region
from gridmgr.legacy.importing import import_history
from gridmgr.people.models import Department

# One closed case in the first grid of street 110105001; street 110105002 has none.
HISTORY = """\
reference,category,lon,lat,step,time,actor_role,actor,department,note
Z1,E0101,116.401,39.901,reported,2025-03-03T09:00:00+08:00,inspector,周八,,垃圾
Z1,,,,file,2025-03-03T09:10:00+08:00,operator,王五,,
Z1,,,,dispatch,2025-03-03T09:20:00+08:00,dispatcher,赵六,环卫中心,
Z1,,,,accept,2025-03-03T09:30:00+08:00,department,环卫值班,,
Z1,,,,handle,2025-03-03T10:00:00+08:00,department,环卫值班,,
Z1,,,,check,2025-03-03T10:30:00+08:00,inspector,周八,,
Z1,,,,close,2025-03-03T11:00:00+08:00,duty_chief,钱七,,
"""
QUIET_STREET, QUIET_GRID = "110105002", "110105002001001"
QUIET_AREA = MultiPolygon([box(116.404, 39.90, 116.406, 39.904)])


@pytest.fixture
def month(city, make_user, auth_headers, tmp_path):
    """The test city with a second, quiet street (one community, one grid) east of the first,
    a department that received nothing, and Z1 imported."""
    district = db.session.scalar(select(Region).where(Region.code == "110105"))
    parent = district
    for level, code in (("street", QUIET_STREET), ("community", "110105002001"),
                        ("grid", QUIET_GRID)):
        parent = Region(city_id=city.city_id, level=level, code=code, name=f"安静{level}",
                        parent_id=parent.id, area_m2=4e6, geom=f"SRID=4326;{QUIET_AREA.wkt}")
        db.session.add(parent)
        db.session.flush()
    db.session.add(Department(name="园林局", name_en="Parks"))
    db.session.commit()
    path = tmp_path / "history.csv"
    path.write_text(HISTORY, encoding="utf-8")
    import_history(path)
    operator = make_user("operator")  # city-wide
    return auth_headers(operator)


def _rows(client, headers, query: str) -> dict[str, dict]:
    answer = client.get(f"/api/v1/stats/{query}", headers=headers)
    assert answer.status_code == 200, answer.get_json()
    return {row["key"]: row for row in answer.get_json()["rows"]}


def _is_zero(row: dict) -> bool:
    return (all(row["counts"][name] == 0 for name in COUNTS)
            and all(row["rates"][name] is None for name in RATES))


def test_a_street_without_cases_is_listed_with_zeros_and_no_grade(client, month):
    streets = _rows(client, month, "regions?period=2025-03&level=street")
    assert set(streets) == {"110105001", QUIET_STREET}
    quiet = streets[QUIET_STREET]
    assert quiet["name"] == "安静street" and _is_zero(quiet)
    assert (quiet["score"], quiet["grade"]) == (None, None)  # nothing to judge
    busy = streets["110105001"]
    assert busy["counts"]["reported"] == 1 and busy["grade"] is not None

    grids = _rows(client, month, "regions?period=2025-03&level=grid")
    assert set(grids) == {"110105001001001", "110105001001002", "110105001001003",
                          "110105001001004", QUIET_GRID}
    assert [key for key, row in grids.items() if not _is_zero(row)] == ["110105001001001"]
    # inside the busy street, the quiet street's grid is not listed
    inside = _rows(client, month, "regions?period=2025-03&level=grid&region=110105001")
    assert QUIET_GRID not in inside and len(inside) == 4


def test_a_department_and_a_category_without_cases_are_listed_with_zeros(client, month):
    departments = {row["name"]: row for row in _rows(
        client, month, "departments?period=2025-03").values()}
    assert _is_zero(departments["园林局"])
    assert (departments["园林局"]["score"], departments["园林局"]["grade"]) == (None, None)
    assert departments["环卫中心"]["counts"]["closed"] == 1
    assert set(departments) == set(db.session.scalars(select(Department.name)))

    categories = {row["code"]: row for row in _rows(
        client, month, "categories?period=2025-03").values()}
    active = set(db.session.scalars(select(Category.code).where(Category.active.is_(True))))
    assert set(categories) == active
    assert categories["E0101"]["counts"]["closed"] == 1
    assert _is_zero(categories["C0301"]) and categories["C0301"]["name"]


def test_a_month_with_no_case_anywhere_lists_every_street_with_zeros(client, month, runner):
    streets = _rows(client, month, "regions?period=2025-04&level=street")
    assert set(streets) == {"110105001", QUIET_STREET}
    assert all(_is_zero(row) and row["grade"] is None for row in streets.values())

    answer = client.get("/api/v1/stats/regions?period=2025-04&level=street&format=csv",
                        headers=month)
    lines = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))
    assert [line["key"] for line in lines] == ["110105001", QUIET_STREET]
    assert lines[1]["reported"] == "0" and lines[1]["closing_rate"] == ""
    assert lines[1]["grade"] == ""

    printed = runner.invoke(main, args=["stats", "--period", "2025-04", "--level", "street"])
    assert printed.exit_code == 0, printed.output
    assert QUIET_STREET in printed.output and "2 rows" in printed.output


def test_the_monthly_report_ranks_only_regions_with_activity(month):
    """The monthly report ranks what happened: it asks for no idle rows."""
    city_id = db.session.scalar(text("SELECT id FROM cities"))
    span = periods.month("2025-03", ZoneInfo("Asia/Shanghai"))
    assert [row["key"] for row in evaluate("regions", span, city_id, level=9)] == ["110105001"]
    assert [row["key"] for row in evaluate("regions", span, city_id, level=9, idle=True)] == [
        "110105001", QUIET_STREET]
