"""Stories of a city moving from its old system: past cases arrive with their timelines."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cityfixtures import city_fixture  # noqa: F401
from shapely.geometry import MultiPolygon, box
from sqlalchemy import text

from gridmgr.categories.operations import load_default_catalogue
from gridmgr.cli import main
from gridmgr.errors import DomainError
from gridmgr.extensions import db
from gridmgr.grids.models import City, Region
from gridmgr.legacy.importing import import_history

CST = timezone(timedelta(hours=8))
HEADER = "reference,category,lon,lat,step,time,actor_role,actor,department,note\n"
P = "116.401,39.901"  # in grid 110105001001001 of the test city

# A citizen's report of exposed garbage (E0101: verify 1, file 0.5, dispatch 0.5, handle 4,
# check 1 working hours), handled, sent back once, handled again, checked and closed.
# Monday 3 March 2025 is a working day (default calendar, 08-12 and 14-18).
FULL_TIMELINE = HEADER + f"""\
OLD-1,E0101,{P},reported,2025-03-03T09:12:00+08:00,citizen,张三,,路口有垃圾
OLD-1,,,,verify,2025-03-03T09:40:00+08:00,inspector,insp,,
OLD-1,,,,file,2025-03-03T10:05:00+08:00,operator,王五,,
OLD-1,,,,dispatch,2025-03-03T10:20:00+08:00,dispatcher,赵六,环卫中心,
OLD-1,,,,accept,2025-03-03T10:45:00+08:00,department,环卫中心值班,,
OLD-1,,116.4011,39.9011,handle,2025-03-03T15:30:00+08:00,department,环卫中心值班,,已清理
OLD-1,,,,rework,2025-03-03T16:00:00+08:00,duty_chief,钱七,,没清干净
OLD-1,,,,accept,2025-03-03T16:10:00+08:00,department,环卫中心值班,,
OLD-1,,,,handle,2025-03-03T16:40:00+08:00,department,环卫中心值班,,
OLD-1,,,,check,2025-03-04T09:00:00+08:00,inspector,insp,,
OLD-1,,,,close,2025-03-04T09:30:00+08:00,duty_chief,钱七,,
"""


def _write(tmp_path, content: str, name: str = "history.csv"):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


def _t(local: str) -> datetime:
    return datetime.fromisoformat(local).replace(tzinfo=CST)


def test_a_closed_case_arrives_with_its_whole_timeline(city, make_user, tmp_path):
    insp = make_user("inspector", "insp", region_code="110105001001")
    result = import_history(_write(tmp_path, FULL_TIMELINE))
    assert (result.cases, result.steps, result.skipped) == (1, 11, [])

    case = db.session.execute(text("""
        SELECT id, code, state, source, channel, grid_code, reporter_id, verified_by_id,
               department_id, handler_id, rework_count, return_count, created_at, updated_at,
               dispatched_at, deadline, handled_at, closed_at, deadlines, version,
               (SELECT name FROM departments d WHERE d.id = department_id) AS department
        FROM cases""")).one()
    assert (case.code, case.state, case.source, case.channel) == (
        "OLD-1", "closed", "citizen", "hotline")
    assert case.grid_code == "110105001001001"
    assert (case.reporter_id, case.verified_by_id, case.handler_id) == (None, insp.id, None)
    assert case.department == "环卫中心"
    assert (case.rework_count, case.return_count, case.version) == (1, 0, 11)
    assert case.created_at == _t("2025-03-03 09:12")
    assert case.updated_at == case.closed_at == _t("2025-03-04 09:30")
    assert case.handled_at == _t("2025-03-03 16:40")
    # the clock restarted at the rework: 2 working hours that day, 2 the next morning
    assert case.dispatched_at == _t("2025-03-03 16:00")
    assert case.deadline == _t("2025-03-04 10:00")
    # every stage timed, the accept clock (half an hour by default) restarted with the rework
    stages = {k: datetime.fromisoformat(v) for k, v in case.deadlines.items() if k != "yellow"}
    assert stages == {
        "verify": _t("2025-03-03 10:12"), "file": _t("2025-03-03 10:10"),
        "dispatch": _t("2025-03-03 10:35"), "accept": _t("2025-03-03 16:30"),
        "handle": _t("2025-03-04 10:00"), "check": _t("2025-03-03 17:40")}
    assert set(case.deadlines["yellow"]) == set(stages)

    history = db.session.execute(text("""
        SELECT action, from_state, to_state, at, actor_id, actor_role, note, details,
               ST_X(location) AS lon
        FROM case_history WHERE case_id = :id ORDER BY id"""), {"id": case.id}).all()
    assert [(h.action, h.from_state, h.to_state) for h in history] == [
        ("report", None, "reported"), ("verify", "reported", "verified"),
        ("file", "verified", "filed"), ("dispatch", "filed", "dispatched"),
        ("accept", "dispatched", "accepted"), ("handle", "accepted", "handled"),
        ("rework", "handled", "dispatched"), ("accept", "dispatched", "accepted"),
        ("handle", "accepted", "handled"), ("check", "handled", "checked"),
        ("close", "checked", "closed")]
    assert [h.at for h in history][:2] == [_t("2025-03-03 09:12"), _t("2025-03-03 09:40")]
    assert [h.actor_id for h in history] == [None, insp.id, None, None, None, None, None,
                                              None, None, insp.id, None]
    assert history[0].details == {"imported": True, "actor": "张三", "channel": "hotline"}
    assert history[1].details == {"imported": True, "valid": True}
    assert history[3].details["department_id"] == case.department_id
    assert history[6].details == {"imported": True, "actor": "钱七", "rework": 1,
                                  "department_id": case.department_id}
    assert history[6].note == "没清干净" and history[6].actor_role == "duty_chief"
    assert history[5].lon == pytest.approx(116.4011)
    report = db.session.execute(text(
        "SELECT reporter_key, client_id, created_at FROM reports")).one()
    assert tuple(report) == ("anon", "import:OLD-1", _t("2025-03-03 09:12"))


def test_an_open_case_is_left_where_its_last_step_left_it(city, tmp_path):
    content = HEADER + f"""\
OLD-2,C0301,{P},reported,2025-03-05T09:00:00+08:00,inspector,周八,,厕所堵塞
OLD-2,,,,file,2025-03-05T09:20:00+08:00,operator,王五,,
OLD-2,,,,dispatch,2025-03-05T09:30:00+08:00,dispatcher,赵六,,
OLD-2,,,,return,2025-03-05T09:50:00+08:00,department,某部门,,不归我们管
OLD-2,,,,dispatch,2025-03-05T10:00:00+08:00,dispatcher,赵六,城管执法局,
OLD-2,,,,shelve,2025-03-06T10:00:00+08:00,duty_chief,钱七,,等待施工
"""
    import_history(_write(tmp_path, content))
    case = db.session.execute(text("""
        SELECT state, shelved_from, paused_at, return_count, source, channel,
               (SELECT name FROM departments d WHERE d.id = department_id) AS department
        FROM cases""")).one()
    assert tuple(case) == ("shelved", "dispatched", _t("2025-03-06 10:00"), 1, "inspector",
                           "patrol", "城管执法局")
    first_dispatch = db.session.execute(text("""
        SELECT (SELECT name FROM departments d WHERE d.id = (h.details->>'department_id')::int)
        FROM case_history h WHERE action = 'return'""")).scalar_one()
    assert first_dispatch == "环卫中心"  # the category's responsible department


def test_one_bad_row_and_nothing_is_loaded(city, tmp_path):
    content = FULL_TIMELINE + f"OLD-3,E0101,{P},reported,2025-03-05 09:00,citizen,某人,,\n"
    with pytest.raises(DomainError) as refused:
        import_history(_write(tmp_path, content))
    assert refused.value.code == "invalid_history"
    assert [(p["row"], p["problem"]) for p in refused.value.details["problems"]] == [
        (13, "time_without_offset")]
    assert db.session.scalar(text("SELECT count(*) FROM cases")) == 0
    assert db.session.scalar(text("SELECT count(*) FROM case_history")) == 0


def test_every_bad_row_is_named(city, tmp_path):
    content = HEADER + f"""\
A1,X9999,{P},reported,2025-03-03T09:00:00+08:00,citizen,甲,,
A2,E0101,116.401,95,reported,2025-03-03T09:00:00+08:00,citizen,甲,,
A3,E0101,{P},reported,2025-03-03T09:00:00+08:00,inspector,甲,,
A3,,,,file,2025-03-03T09:10:00+08:00,operator,乙,,
A3,,,,close,2025-03-03T09:20:00+08:00,duty_chief,丙,,
A4,E0101,{P},reported,2025-03-03T09:00:00,citizen,甲,,
A5,E0101,{P},reported,2025-03-03T09:00:00+08:00,citizen,甲,,
A5,,,,fixed,2025-03-03T09:30:00+08:00,operator,乙,,
A6,E0101,121.47,31.23,reported,2025-03-03T09:00:00+08:00,citizen,甲,,
A7,E0101,{P},reported,2025-03-03T09:00:00+08:00,inspector,甲,,
A7,,,,file,2025-03-03T09:10:00+08:00,operator,乙,,
A7,,,,dispatch,2025-03-03T09:20:00+08:00,dispatcher,丁,不存在的局,
A8,E0101,{P},reported,2025-03-03T09:00:00+08:00,inspector,甲,,
A8,,,,cancel,2025-03-03T09:10:00+08:00,operator,乙,,
A9,E0101,{P},reported,2025-03-03T09:00:00+08:00,inspector,甲,,
A9,,,,file,2025-03-03T09:10:00+08:00,citizen,乙,,
"""
    with pytest.raises(DomainError) as refused:
        import_history(_write(tmp_path, content))
    named = [(p["row"], p["reference"], p["problem"]) for p in refused.value.details["problems"]]
    assert named == [
        (2, "A1", "unknown_category"), (3, "A2", "bad_location"),
        (6, "A3", "bad_step_order"), (7, "A4", "time_without_offset"),
        (9, "A5", "unknown_step"), (10, "A6", "outside_city"),
        (13, "A7", "unknown_department"), (15, "A8", "note_required"),
        (17, "A9", "role_not_allowed")]
    close_first = next(p for p in refused.value.details["problems"] if p["reference"] == "A3")
    assert "close cannot follow a filed case" in close_first["message"]
    assert db.session.scalar(text("SELECT count(*) FROM cases")) == 0


def test_json_lines_and_a_second_import_skips_what_is_there(city, runner, tmp_path):
    rows = [{"reference": "J-1", "category": "E0101", "lon": 116.401, "lat": 39.901,
             "step": "reported", "time": "2025-04-01T08:30:00+08:00", "actor_role": "inspector",
             "actor": "巡查员甲", "department": "", "note": "垃圾"},
            {"reference": "J-1", "step": "self_handle", "time": "2025-04-01T08:45:00+08:00",
             "actor_role": "inspector", "actor": "巡查员甲", "note": "当场清理"}]
    path = _write(tmp_path, "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n",
                  "history.jsonl")
    checked = runner.invoke(main, args=["cases", "import", "--dry-run", str(path)])
    assert "would import 1 cases with 2 steps" in checked.output
    assert db.session.scalar(text("SELECT count(*) FROM cases")) == 0
    first = runner.invoke(main, args=["cases", "import", str(path)])
    assert first.exit_code == 0, first.output
    assert "imported 1 cases with 2 steps." in first.output
    again = runner.invoke(main, args=["cases", "import", str(path)])
    assert again.exit_code == 0
    assert "imported 0 cases with 0 steps; skipped J-1 (nothing new)." in again.output
    state, handled_at = db.session.execute(text("SELECT state, handled_at FROM cases")).one()
    assert (state, handled_at) == ("closed", _t("2025-04-01 08:45"))
    assert db.session.scalar(text("SELECT count(*) FROM case_history")) == 2


def test_a_reference_that_is_another_cases_number_is_refused(city, runner, tmp_path):
    db.session.execute(text("""
        INSERT INTO cases (code, city_id, state, source, channel, category_id, region_id,
                           grid_code, location)
        SELECT 'OLD-1', c.id, 'reported', 'citizen', 'app', k.id, r.id, r.code,
               ST_SetSRID(ST_MakePoint(116.401, 39.901), 4326)
        FROM cities c, categories k, regions r
        WHERE k.code = 'E0101' AND r.code = '110105001001001'"""))
    db.session.commit()
    refused = runner.invoke(main, args=["cases", "import", str(_write(tmp_path, FULL_TIMELINE))])
    assert refused.exit_code == 1
    assert "reference_taken" in refused.output and "row 2" in refused.output


EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"


def test_the_documented_example_loads_into_yuzhong(app_ctx):
    """docs/examples/history.csv: four cases in 渝中区 (one unit grid over them here)."""
    city = City(slug="chongqing", name="重庆市", timezone="Asia/Shanghai")
    db.session.add(city)
    db.session.flush()
    parent = None
    for level, code in (("district", "500103"), ("street", "500103001"),
                        ("community", "500103001001"), ("grid", "500103001001001")):
        parent = Region(city_id=city.id, level=level, code=code, name=code,
                        parent_id=parent.id if parent else None, area_m2=1e7,
                        geom=f"SRID=4326;{MultiPolygon([box(106.50, 29.53, 106.60, 29.58)]).wkt}")
        db.session.add(parent)
        db.session.flush()
    load_default_catalogue()
    db.session.commit()
    result = import_history(EXAMPLES / "history.csv")
    assert (result.cases, result.steps) == (4, 24)
    assert db.session.execute(text("SELECT code, state, rework_count, return_count FROM cases "
                                   "ORDER BY code")).all() == [
        ("YZ2025-000101", "closed", 0, 0), ("YZ2025-000102", "closed", 1, 1),
        ("YZ2025-000103", "closed", 0, 0), ("YZ2025-000104", "cancelled", 0, 0)]
    assert import_history(EXAMPLES / "history.jsonl").skipped == [
        "YZ2025-000101", "YZ2025-000102", "YZ2025-000103", "YZ2025-000104"]


def test_the_example_files_describe_the_same_cases():
    with open(EXAMPLES / "history.csv", encoding="utf-8") as f:
        from_csv = [{k: v for k, v in r.items() if v} for r in csv.DictReader(f)]
    with open(EXAMPLES / "history.jsonl", encoding="utf-8") as f:
        from_jsonl = [{k: str(v) for k, v in json.loads(line).items() if v not in ("", None)}
                      for line in f if line.strip()]
    assert from_csv == from_jsonl


def test_imported_history_counts_in_the_evaluation(city, make_user, tmp_path):
    from gridmgr.evaluation.operations import city_table

    make_user("inspector", "insp", region_code="110105001001")
    import_history(_write(tmp_path, FULL_TIMELINE))
    table = city_table("regions", city.city_id, period="2025-03", level="grid")
    rows = {row["key"]: row for row in table["rows"]}
    assert set(rows) == set(city.grids)  # the other three grids are listed with zeros
    row = rows["110105001001001"]
    counts = row["counts"]
    assert (counts["reported"], counts["valid"], counts["verified"], counts["filed"],
            counts["dispatched"], counts["handled"], counts["reworked"], counts["checked"],
            counts["closed"]) == (1, 1, 1, 1, 1, 1, 1, 1, 1)
    # filed at 10:05 against 10:10, handled at 16:40 against 10:00 the next day
    assert (counts["filed_on_time"], counts["handled_on_time"]) == (1, 1)
