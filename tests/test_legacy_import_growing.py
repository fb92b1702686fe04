"""Stories of a switch-over month by month: the old system's export grows, and each import adds
only what is new — the later steps of cases imported before, and the new cases."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cityfixtures import city_fixture  # noqa: F401
from shapely.geometry import MultiPolygon, box
from sqlalchemy import text

from gridmgr.cases.workflow import StepInput, take_step
from gridmgr.categories.operations import load_default_catalogue
from gridmgr.cli import main
from gridmgr.errors import DomainError
from gridmgr.evaluation.operations import city_table
from gridmgr.extensions import db
from gridmgr.grids.models import City, Region
from gridmgr.legacy.importing import import_history
from gridmgr.people.models import User

CST = timezone(timedelta(hours=8))
HEADER = ("reference,category,lon,lat,step,time,actor_role,actor,department,note,deadline,"
          "passed\n")
P = "116.401,39.901"  # grid 110105001001001 of the test city
Q = "116.403,39.903"  # grid 110105001001004

# Monday 3 March 2025 onwards, working days (08-12, 14-18). E0101: handle 4 working hours.
G1_EARLY = f"""\
G1,E0101,{P},reported,2025-03-03T09:00:00+08:00,citizen,张三,,路口有垃圾,,
G1,,,,verify,2025-03-03T09:20:00+08:00,inspector,insp,,,,
G1,,,,file,2025-03-03T09:40:00+08:00,operator,王五,,,,
G1,,,,dispatch,2025-03-03T10:00:00+08:00,dispatcher,赵六,环卫中心,,,
G1,,,,accept,2025-03-03T10:30:00+08:00,department,环卫值班,,,,
"""
G1_LATER = """\
G1,,,,extend,2025-03-03T11:00:00+08:00,duty_chief,钱七,,,2025-03-05T12:00:00+08:00,
G1,,,,shelve,2025-03-03T11:30:00+08:00,duty_chief,钱七,,等待清运车,,
G1,,,,resume,2025-03-04T09:00:00+08:00,duty_chief,钱七,,,,
G1,,116.4011,39.9011,handle,2025-03-04T10:00:00+08:00,department,环卫值班,,已清理,,
G1,,,,check,2025-03-04T11:00:00+08:00,inspector,insp,,没清干净,,no
G1,,,,accept,2025-03-04T11:10:00+08:00,department,环卫值班,,,,
G1,,,,handle,2025-03-04T15:00:00+08:00,department,环卫值班,,,,
G1,,,,check,2025-03-04T16:00:00+08:00,inspector,insp,,,,yes
G1,,,,close,2025-03-04T16:30:00+08:00,duty_chief,钱七,,,,
"""
G2_EARLY = f"""\
G2,C0301,{Q},reported,2025-03-05T09:00:00+08:00,inspector,周八,,厕所堵塞,,
G2,E0101,,,file,2025-03-05T09:20:00+08:00,operator,王五,,,,
"""
G2_LATER = """\
G2,,,,dispatch,2025-03-05T09:30:00+08:00,dispatcher,赵六,,,,
G2,,,,return,2025-03-05T09:50:00+08:00,department,某部门,,不归我们管,,
G2,,,,dispatch,2025-03-05T10:00:00+08:00,dispatcher,赵六,城管执法局,,,
G2,,,,accept,2025-03-05T10:20:00+08:00,department,执法值班,,,,
G2,,,,handle,2025-03-05T11:00:00+08:00,department,执法值班,,,,
"""
G3 = f"""\
G3,E0501,{P},reported,2025-03-05T10:00:00+08:00,inspector,周八,,,,
G3,,,,self_handle,2025-03-05T10:10:00+08:00,inspector,周八,,劝离游商,,
"""
G4 = f"""\
G4,E0101,{P},reported,2025-03-06T09:00:00+08:00,citizen,孙九,,,,
G4,,,,cancel,2025-03-06T10:00:00+08:00,operator,王五,,重复举报,,
"""
G5_EARLY = f"""\
G5,E0101,{P},reported,2025-03-06T09:00:00+08:00,inspector,insp,,,,
G5,,,,file,2025-03-06T09:10:00+08:00,operator,王五,,,,
G5,,,,dispatch,2025-03-06T09:20:00+08:00,dispatcher,赵六,城管执法局,,,
G5,,,,shelve,2025-03-06T10:00:00+08:00,duty_chief,钱七,,等待施工,,
"""
G5_LATER = """\
G5,,,,resume,2025-03-07T09:00:00+08:00,duty_chief,钱七,,,,
G5,,,,accept,2025-03-07T09:10:00+08:00,department,执法值班,,,,
G5,,,,handle,2025-03-07T10:00:00+08:00,department,执法值班,,,,
G5,,,,check,2025-03-07T11:00:00+08:00,inspector,insp,,,,1
G5,,,,close,2025-03-07T11:30:00+08:00,duty_chief,钱七,,,,
"""
# February's export, then March's: the same cases with their later steps, and one new case.
SHORT = HEADER + G1_EARLY + G2_EARLY + G3 + G5_EARLY
LONG = HEADER + G1_EARLY + G2_EARLY + G3 + G5_EARLY + G1_LATER + G2_LATER + G4 + G5_LATER


def _write(tmp_path, content: str, name: str) -> str:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return str(path)


def _t(local: str) -> datetime:
    return datetime.fromisoformat(local).replace(tzinfo=CST)


def _outcome() -> dict:
    """Everything an import writes, without the generated ids: case rows, history rows,
    first reports and evaluation facts, each keyed by the case's reference."""
    cases = db.session.execute(text("""
        SELECT to_jsonb(c) - 'id' - 'location' || jsonb_build_object(
                   'location', ST_AsText(c.location)) AS row
        FROM cases c ORDER BY code""")).scalars().all()
    history = db.session.execute(text("""
        SELECT c.code, to_jsonb(h) - 'id' - 'case_id' - 'location' || jsonb_build_object(
                   'location', ST_AsText(h.location)) AS row
        FROM case_history h JOIN cases c ON c.id = h.case_id
        ORDER BY c.code, h.at, h.id""")).all()
    reports = db.session.execute(text("""
        SELECT c.code, to_jsonb(r) - 'id' - 'case_id' AS row
        FROM reports r JOIN cases c ON c.id = r.case_id ORDER BY c.code""")).all()
    facts = db.session.execute(text("""
        SELECT c.code, to_jsonb(f) - 'id' - 'case_id' - 'step_id' AS row
        FROM evaluation_facts f JOIN cases c ON c.id = f.case_id
        ORDER BY c.code, f.at, f.kind""")).all()
    return {"cases": cases, "history": [tuple(r) for r in history],
            "reports": [tuple(r) for r in reports], "facts": [tuple(r) for r in facts]}


def _count(table: str) -> int:
    return db.session.scalar(text(f"SELECT count(*) FROM {table}"))


@pytest.fixture
def insp(city, make_user) -> User:
    return make_user("inspector", "insp", region_code="110105001001")


def test_the_longer_export_adds_the_later_steps_and_names_each_reference(insp, runner,
                                                                          tmp_path):
    first = runner.invoke(main, args=["cases", "import", _write(tmp_path, SHORT, "feb.csv")])
    assert first.output == "imported 4 cases with 13 steps.\n", first.output
    march = _write(tmp_path, LONG, "mar.csv")

    checked = runner.invoke(main, args=["cases", "import", "--dry-run", march])
    assert checked.exit_code == 0, checked.output
    assert checked.output == ("would import 1 cases with 2 steps; would extend G1 (+9 steps), "
                              "G2 (+5), G5 (+5); would skip G3 (nothing new).\n")
    assert (_count("cases"), _count("case_history")) == (4, 13)

    added = runner.invoke(main, args=["cases", "import", march])
    assert added.exit_code == 0, added.output
    assert added.output == ("imported 1 cases with 2 steps; extended G1 (+9 steps), G2 (+5), "
                            "G5 (+5); skipped G3 (nothing new).\n")
    states = db.session.execute(text(
        "SELECT code, state, version, rework_count, return_count, extension_count "
        "FROM cases ORDER BY code")).all()
    assert [tuple(s) for s in states] == [
        ("G1", "closed", 14, 1, 0, 1), ("G2", "handled", 7, 0, 1, 0),
        ("G3", "closed", 2, 0, 0, 0), ("G4", "cancelled", 2, 0, 0, 0),
        ("G5", "closed", 9, 0, 0, 0)]
    g1 = db.session.execute(text("""
        SELECT h.action, h.from_state, h.to_state, h.at FROM case_history h
        JOIN cases c ON c.id = h.case_id WHERE c.code = 'G1' ORDER BY h.at, h.id""")).all()
    assert [(h.action, h.to_state) for h in g1][4:] == [
        ("accept", "accepted"), ("extend", "accepted"), ("shelve", "shelved"),
        ("resume", "accepted"), ("handle", "handled"), ("rework", "dispatched"),
        ("accept", "accepted"), ("handle", "handled"), ("check", "checked"),
        ("close", "closed")]
    assert g1[5].at == _t("2025-03-03 11:00")

    again = runner.invoke(main, args=["cases", "import", march])
    assert again.output == ("imported 0 cases with 0 steps; skipped G1, G2, G3, G4, G5 "
                            "(nothing new).\n")
    assert _count("case_history") == 13 + 9 + 5 + 2 + 5


def test_importing_short_then_long_equals_importing_long_at_once(insp, tmp_path):
    long_path = _write(tmp_path, LONG, "long.csv")
    import_history(long_path)
    at_once = _outcome()
    assert len(at_once["cases"]) == 5 and len(at_once["facts"]) == 28

    db.session.execute(text("TRUNCATE cases, case_history, reports, evaluation_facts CASCADE"))
    db.session.commit()
    import_history(_write(tmp_path, SHORT, "short.csv"))
    result = import_history(long_path)
    assert result.extended == {"G1": 9, "G2": 5, "G5": 5} and result.skipped == ["G3"]
    assert result.references == ["G4"]
    in_two = _outcome()

    for part in ("cases", "history", "reports", "facts"):
        assert in_two[part] == at_once[part], part


def test_a_changed_earlier_step_is_refused_by_row_and_nothing_is_written(insp, runner,
                                                                        tmp_path):
    import_history(_write(tmp_path, SHORT, "feb.csv"))
    before = _outcome()
    # row 4 (G1's file step) moved by five minutes, row 9 (G5's report) with another note
    changed = LONG.replace("G1,,,,file,2025-03-03T09:40:00", "G1,,,,file,2025-03-03T09:45:00")
    changed = changed.replace("G5,E0101,116.401,39.901,reported,2025-03-06T09:00:00+08:00,"
                              "inspector,insp,,,", "G5,E0101,116.401,39.901,reported,"
                              "2025-03-06T09:00:00+08:00,inspector,insp,,改过的描述,")
    path = _write(tmp_path, changed, "mar.csv")

    with pytest.raises(DomainError) as refused:
        import_history(path)
    assert refused.value.code == "invalid_history"
    problems = refused.value.details["problems"]
    assert [(p["row"], p["reference"], p["problem"]) for p in problems] == [
        (4, "G1", "history_changed"), (11, "G5", "history_changed")]
    assert problems[0]["message"] == (
        "row 4: step 3 of G1 is not the imported one: time 2025-03-03T01:45:00+00:00 in the "
        "file, 2025-03-03T01:40:00+00:00 imported. Imported history is not rewritten: correct "
        "the case with the workflow.")
    assert "note '改过的描述' in the file, nothing imported" in problems[1]["message"]
    # neither the other cases' later steps nor the new case G4 were written
    assert _outcome() == before

    cli = runner.invoke(main, args=["cases", "import", path])
    assert cli.exit_code == 1
    assert "history_changed: row 4: step 3 of G1" in cli.output
    assert _outcome() == before


def test_a_shortened_export_or_a_case_moved_on_in_gridmgr_is_refused(insp, tmp_path):
    import_history(_write(tmp_path, LONG, "mar.csv"))
    before = _outcome()
    with pytest.raises(DomainError) as refused:
        import_history(_write(tmp_path, SHORT, "feb.csv"))
    assert [(p["reference"], p["problem"]) for p in refused.value.details["problems"]] == [
        ("G1", "history_shortened"), ("G2", "history_shortened"),
        ("G5", "history_shortened")]
    assert _outcome() == before

    # G2 is handled; an inspector checks it in gridmgr, then the export brings a close
    db.session.execute(text("TRUNCATE cases, case_history, reports, evaluation_facts CASCADE"))
    db.session.commit()
    import_history(_write(tmp_path, LONG, "mar.csv"))
    g2 = db.session.scalar(text("SELECT id FROM cases WHERE code = 'G2'"))
    take_step(g2, "check", insp, StepInput(lon=116.403, lat=39.903))
    before = _outcome()
    later = LONG + "G2,,,,check,2025-03-06T09:00:00+08:00,inspector,insp,,,,\n"
    with pytest.raises(DomainError) as refused:
        import_history(_write(tmp_path, later, "apr.csv"))
    assert [(p["reference"], p["problem"]) for p in refused.value.details["problems"]] == [
        ("G2", "changed_since_import")]
    assert _outcome() == before


def test_a_failed_check_imports_as_the_api_writes_a_failed_check(insp, city, tmp_path):
    handled = f"""\
F1,E0101,{P},reported,2025-03-03T09:00:00+08:00,inspector,周八,,,,
F1,,,,file,2025-03-03T09:10:00+08:00,operator,王五,,,,
F1,,,,dispatch,2025-03-03T09:20:00+08:00,dispatcher,赵六,环卫中心,,,
F1,,,,accept,2025-03-03T09:30:00+08:00,department,环卫值班,,,,
F1,,,,handle,2025-03-03T10:00:00+08:00,department,环卫值班,,已清理,,
"""
    api = handled.replace("F1", "F2")
    failed = "F1,,,,check,2025-03-03T11:00:00+08:00,inspector,insp,,没清干净,,false\n"
    import_history(_write(tmp_path, HEADER + handled + api + failed, "history.csv"))
    # F2 is imported handled; the inspector fails its check through the workflow itself
    f2 = db.session.scalar(text("SELECT id FROM cases WHERE code = 'F2'"))
    take_step(f2, "check", insp, StepInput(lon=116.401, lat=39.901, passed=False,
                                           note="没清干净"))

    cases = {row.code: row for row in db.session.execute(text("""
        SELECT code, state, rework_count, handler_id, handled_at, accepted_at, department_id,
               (SELECT name FROM departments d WHERE d.id = department_id) AS department,
               deadline - dispatched_at AS clock
        FROM cases""")).all()}
    steps = {row.code: row for row in db.session.execute(text("""
        SELECT DISTINCT ON (c.code) c.code, h.action, h.from_state, h.to_state, h.actor_id,
               h.note, h.details - 'imported' AS details,
               ARRAY(SELECT f.kind FROM evaluation_facts f WHERE f.step_id = h.id
                     ORDER BY f.kind) AS counted_as
        FROM case_history h JOIN cases c ON c.id = h.case_id
        ORDER BY c.code, h.at DESC, h.id DESC""")).all()}
    for code in ("F1", "F2"):
        case = cases[code]
        assert (case.state, case.rework_count, case.handler_id, case.handled_at,
                case.accepted_at, case.department) == ("dispatched", 1, None, None, None,
                                                       "环卫中心")
        step = steps[code]
        assert (step.action, step.from_state, step.to_state, step.actor_id, step.note) == (
            "rework", "handled", "dispatched", insp.id, "没清干净")
        assert step.details == {"department_id": case.department_id, "rework": 1,
                                "passed": False}
        assert step.counted_as == ["check", "rework"]
    # the handling clock restarted at the failed check: 11:00 + 4 working hours = 17:00
    assert db.session.scalar(text("SELECT deadline FROM cases WHERE code = 'F1'")) == _t(
        "2025-03-03 17:00")

    (row,) = city_table("regions", city.city_id, period="2025-03", level="grid",
                        prefix=city.grids[0])["rows"]
    counts = row["counts"]
    # F1's failed check; F2's was taken today, in another period
    assert (counts["checked"], counts["reworked"], counts["handled"]) == (1, 1, 2)


def test_a_passed_column_that_is_not_yes_or_no_is_refused(insp, tmp_path):
    content = HEADER + G1_EARLY + (
        "G1,,,,handle,2025-03-03T10:40:00+08:00,department,环卫值班,,,,\n"
        "G1,,,,check,2025-03-03T11:00:00+08:00,inspector,insp,,,,maybe\n"
        "G1,,,,close,2025-03-03T11:30:00+08:00,duty_chief,钱七,,,,no\n")
    with pytest.raises(DomainError) as refused:
        import_history(_write(tmp_path, content, "history.csv"))
    assert [(p["row"], p["problem"]) for p in refused.value.details["problems"]] == [
        (8, "bad_passed"), (9, "passed_not_check")]
    assert (_count("cases"), _count("case_history")) == (0, 0)


EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"


def test_the_documented_first_week_then_the_whole_export(app_ctx, runner):
    """docs/history-import.md: history-week1.csv, then history.csv, in 渝中区."""
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
    week1 = runner.invoke(main, args=["cases", "import", str(EXAMPLES / "history-week1.csv")])
    assert week1.output == "imported 3 cases with 16 steps.\n", repr(week1.exception)
    whole = runner.invoke(main, args=["cases", "import", str(EXAMPLES / "history.csv")])
    assert whole.output == ("imported 1 cases with 2 steps; extended YZ2025-000102 (+6 steps); "
                            "skipped YZ2025-000101, YZ2025-000103 (nothing new).\n")
    assert db.session.execute(text("SELECT code, state, version, rework_count FROM cases "
                                   "ORDER BY code")).all() == [
        ("YZ2025-000101", "closed", 8, 0), ("YZ2025-000102", "closed", 12, 1),
        ("YZ2025-000103", "closed", 2, 0), ("YZ2025-000104", "cancelled", 2, 0)]
