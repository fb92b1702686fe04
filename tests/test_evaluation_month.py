"""A director reads November 2026's evaluation: every count, rate, score and grade of the small
month in ``evaluation_world.py`` (cases K1-K11 and their steps), worked out by hand below.

Per case, in November (local time):
  K1  A1 X inspector: filed on time, dispatched D1, handled on time, checked on time, closed.
  K2  A1 X citizen:   verified on time, filed late, dispatched D1, handled, failed check
                      (rework, on time), handled again on time, checked on time, closed on time.
  K3  A2 Y citizen:   verified late, filed on time, dispatched D2, returned by D2, dispatched D1,
                      extended, handled late, checked late, closed (not on time: handled late).
                      insp1 also reported it (a duplicate report), so it is no 漏报.
  K4  A2 Y inspector: filed on time, dispatched D2, accepted; deadline 11-25 passed while still
                      accepted at the month's end -> overdue (it was handled on 12-02).
  K5  A1 X inspector: handled on the spot by insp1 (self_handle): handled, closed, on time.
  K6  A2 X citizen:   verified on time as not valid -> cancelled: reported, not valid.
  K7  A1 Y inspector: filed on time, dispatched D2, shelved: deadline passed but not overdue.
  K8  A1 X inspector: from October, accepted by D1, deadline 10-25: overdue (nothing else counts).
  K9  B1 X inspector: filed, dispatched D1, handled, checked, closed, all on time.
  K10 B1 Y citizen:   verified and filed on time, dispatched D2, handled late (11-18 > 11-16).
  K11 A1 X reported 12-01 00:00 local: the next month, counted nowhere.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from evaluation_world import STREET_A, STREET_B, build_month

from gridmgr.evaluation import indicators, periods, scores
from gridmgr.evaluation.tables import evaluate

NOVEMBER = periods.month("2026-11", ZoneInfo("Asia/Shanghai"))


def counts(**nonzero: int) -> dict[str, int]:
    return {name: nonzero.get(name, 0) for name in indicators.COUNTS}


@pytest.fixture
def month(app_ctx, make_user):
    return build_month(make_user)


def test_the_month_is_local_november(app_ctx):
    # 2026-11-01 00:00 +08:00 .. 2026-12-01 00:00 +08:00, i.e. from 10-31 16:00 UTC.
    assert NOVEMBER.start.isoformat() == "2026-11-01T00:00:00+08:00"
    assert NOVEMBER.end.isoformat() == "2026-12-01T00:00:00+08:00"


def test_city_totals(month):
    [city] = indicators.compute("city", NOVEMBER, month["city_id"])
    # reported K1-K7, K9, K10 = 9; valid: all but K6 = 8
    # verified K2, K3 (late), K6, K10 = 4, on time 3
    # filed K1, K2 (late), K3, K4, K7, K9, K10 = 7, on time 6
    # dispatched K1, K2, K3 x2, K4, K7, K9, K10 = 8; returned K3 = 1
    # checked K1, K2 (failed), K2, K3 (late), K9 = 5, on time 4; reworked 1 (K2)
    # handled K1, K2, K3 (late), K5, K9, K10 (late) = 6, on time 4
    # closed K1, K2, K3 (late), K5, K9 = 5, on time 4; overdue K4, K8 = 2
    # due for handling: 6 handled + 2 overdue = 8; due for closing: the same 8 cases
    assert city.counts == counts(
        reported=9, valid=8, verified=4, verified_on_time=3, filed=7, filed_on_time=6,
        dispatched=8, returned=1, checked=5, checked_on_time=4, reworked=1, extended=1,
        shelved=1, handled=6, handled_on_time=4, closed=5, closed_on_time=4, overdue=2,
        due_handling=8, due_closing=8)
    assert {k: round(v, 4) for k, v in city.rates.items()} == {
        "valid_report_rate": 0.8889,      # 8/9
        "filed_on_time_rate": 0.8571,     # 6/7
        "dispatch_accuracy": 0.875,       # (8-1)/8
        "handling_rate": 0.75,            # 6/8
        "handled_on_time_rate": 0.5,      # 4/8
        "closing_rate": 0.625,            # 5/8
        "closed_on_time_rate": 0.5,       # 4/8
        "rework_rate": 0.1667,            # 1/6
        "verified_on_time_rate": 0.75,    # 3/4
        "checked_on_time_rate": 0.8,      # 4/5
    }


def test_streets_with_scores_and_grades(month):
    rows = {r["key"]: r for r in evaluate("regions", NOVEMBER, month["city_id"], level=9)}
    assert set(rows) == {STREET_A, STREET_B}
    a, b = rows[STREET_A], rows[STREET_B]
    assert a["name"] == f"street {STREET_A}"
    # Street A: K1-K8 (K8 only as overdue)
    assert a["counts"] == counts(
        reported=7, valid=6, verified=3, verified_on_time=2, filed=5, filed_on_time=4,
        dispatched=6, returned=1, checked=4, checked_on_time=3, reworked=1, extended=1,
        shelved=1, handled=4, handled_on_time=3, closed=4, closed_on_time=3, overdue=2,
        due_handling=6, due_closing=6)
    assert a["rates"] == {
        "valid_report_rate": 0.8571, "filed_on_time_rate": 0.8, "dispatch_accuracy": 0.8333,
        "handling_rate": 0.6667, "handled_on_time_rate": 0.5, "closing_rate": 0.6667,
        "closed_on_time_rate": 0.5, "rework_rate": 0.25, "verified_on_time_rate": 0.6667,
        "checked_on_time_rate": 0.75}
    # Street B: K9, K10
    assert b["counts"] == counts(
        reported=2, valid=2, verified=1, verified_on_time=1, filed=2, filed_on_time=2,
        dispatched=2, checked=1, checked_on_time=1, handled=2, handled_on_time=1, closed=1,
        closed_on_time=1, due_handling=2, due_closing=2)
    assert b["rates"] == {
        "valid_report_rate": 1.0, "filed_on_time_rate": 1.0, "dispatch_accuracy": 1.0,
        "handling_rate": 1.0, "handled_on_time_rate": 0.5, "closing_rate": 0.5,
        "closed_on_time_rate": 0.5, "rework_rate": 0.0, "verified_on_time_rate": 1.0,
        "checked_on_time_rate": 1.0}
    # region = 20 % valid rate + 10 % case-load (reported / busiest 7) + 35 % 结案率
    #          + 35 % 按期结案率
    # A: 100 * (0.2*6/7 + 0.1*7/7 + 0.35*4/6 + 0.35*3/6) = 17.1429 + 10 + 23.3333 + 17.5
    #    = 67.98 -> C
    # B: 100 * (0.2*1 + 0.1*2/7 + 0.35*0.5 + 0.35*0.5) = 20 + 2.8571 + 17.5 + 17.5 = 57.86 -> D
    assert (a["score"], a["grade"]) == (67.98, "C")
    assert (b["score"], b["grade"]) == (57.86, "D")


def test_departments_with_scores_and_grades(month):
    rows = {r["name"]: r for r in evaluate("departments", NOVEMBER, month["city_id"])}
    assert set(rows) == {"环卫", "市政"}  # K5 and K6 never had a department: no row
    d1, d2 = rows["环卫"], rows["市政"]
    # D1 (环卫): K1, K2, K3 (after its return), K9, and K8 overdue
    assert d1["counts"] == counts(
        reported=4, valid=4, verified=2, verified_on_time=1, filed=4, filed_on_time=3,
        dispatched=4, checked=5, checked_on_time=4, reworked=1, extended=1, handled=4,
        handled_on_time=3, closed=4, closed_on_time=3, overdue=1, due_handling=5,
        due_closing=5)
    # D2 (市政): K4, K7, K10, and K3's first dispatch, which D2 returned
    assert d2["counts"] == counts(
        reported=3, valid=3, verified=1, verified_on_time=1, filed=3, filed_on_time=3,
        dispatched=4, returned=1, shelved=1, handled=1, overdue=1, due_handling=2,
        due_closing=2)
    assert d1["rates"] == {
        "valid_report_rate": 1.0, "filed_on_time_rate": 0.75,       # 4/4, 3/4
        "dispatch_accuracy": 1.0, "handling_rate": 0.8,              # 4/4, 4/5
        "handled_on_time_rate": 0.6, "closing_rate": 0.8,            # 3/5, 4/5
        "closed_on_time_rate": 0.6, "rework_rate": 0.25,             # 3/5, 1/4
        "verified_on_time_rate": 0.5, "checked_on_time_rate": 0.8}   # 1/2, 4/5
    assert d2["rates"] == {
        "valid_report_rate": 1.0, "filed_on_time_rate": 1.0,         # 3/3, 3/3
        "dispatch_accuracy": 0.75, "handling_rate": 0.5,             # (4-1)/4, 1/2
        "handled_on_time_rate": 0.0, "closing_rate": 0.0,            # 0/2, 0/2
        "closed_on_time_rate": 0.0, "rework_rate": 0.0,              # 0/2, 0/1
        "verified_on_time_rate": 1.0, "checked_on_time_rate": None}  # 1/1, nothing checked
    # department = 10 % case-load (handled / busiest 4) + 30 % 结案率 + 30 % 按期处置率
    #              + 30 % (1 - 返工率)
    # D1: 100 * (0.1*1 + 0.3*0.8 + 0.3*0.6 + 0.3*0.75) = 10 + 24 + 18 + 22.5 = 74.5 -> C
    # D2: 100 * (0.1*0.25 + 0 + 0 + 0.3*1) = 2.5 + 30 = 32.5 -> E
    assert (d1["score"], d1["grade"]) == (74.5, "C")
    assert (d2["score"], d2["grade"]) == (32.5, "E")


def test_categories(month):
    rows = {r["code"]: r for r in evaluate("categories", NOVEMBER, month["city_id"])}
    x, y = rows["T0101"], rows["T0102"]
    assert x["name"] == "类别X"
    # X: K1, K2, K5, K6, K9 reported; K8 overdue
    assert x["counts"] == counts(
        reported=5, valid=4, verified=2, verified_on_time=2, filed=3, filed_on_time=2,
        dispatched=3, checked=4, checked_on_time=4, reworked=1, handled=4, handled_on_time=4,
        closed=4, closed_on_time=4, overdue=1, due_handling=5, due_closing=5)
    # Y: K3, K4, K7, K10
    assert y["counts"] == counts(
        reported=4, valid=4, verified=2, verified_on_time=1, filed=4, filed_on_time=4,
        dispatched=5, returned=1, checked=1, extended=1, shelved=1, handled=2, closed=1,
        overdue=1, due_handling=3, due_closing=3)
    assert x["rates"] == {
        "valid_report_rate": 0.8, "filed_on_time_rate": 0.6667, "dispatch_accuracy": 1.0,
        "handling_rate": 0.8, "handled_on_time_rate": 0.8, "closing_rate": 0.8,
        "closed_on_time_rate": 0.8, "rework_rate": 0.25, "verified_on_time_rate": 1.0,
        "checked_on_time_rate": 1.0}
    assert y["rates"] == {
        "valid_report_rate": 1.0, "filed_on_time_rate": 1.0, "dispatch_accuracy": 0.8,
        "handling_rate": 0.6667, "handled_on_time_rate": 0.0, "closing_rate": 0.3333,
        "closed_on_time_rate": 0.0, "rework_rate": 0.0, "verified_on_time_rate": 0.5,
        "checked_on_time_rate": 0.0}
    assert "score" not in x


def test_people_inspectors_scored_citizens_never_listed(month):
    rows = {r["username"]: r for r in evaluate("people", NOVEMBER, month["city_id"])}
    assert "cit" not in rows
    assert set(rows) == {"insp1", "insp2", "op", "disp", "chief", "w1", "w2"}
    insp1, insp2 = rows["insp1"], rows["insp2"]
    # insp1 reported K1, K4, K5, K7 (all valid), verified K2, K3 (late), K6, checked K1,
    # K2 (failed), K2, K3 (late), handled K5 on the spot
    assert insp1["counts"] == counts(
        reported=4, valid=4, verified=3, verified_on_time=2, checked=4, checked_on_time=3,
        handled=1, handled_on_time=1, closed=1, closed_on_time=1, due_handling=1,
        due_closing=1)
    # 漏报率 for community 110105001001: valid problems K1, K2, K3, K4, K5, K7 = 6; from the
    # public with no inspector's report: K2 (K3 has insp1's duplicate report) -> 1/6.
    # The failed check insp1 made on K2 is a rework of w1's handling: it counts for w1.
    assert insp1["rates"] == {
        "valid_report_rate": 1.0, "filed_on_time_rate": None, "dispatch_accuracy": None,
        "handling_rate": 1.0, "handled_on_time_rate": 1.0, "closing_rate": 1.0,
        "closed_on_time_rate": 1.0, "rework_rate": 0.0, "verified_on_time_rate": 0.6667,
        "checked_on_time_rate": 0.75, "missed_rate": 0.1667}
    # insp2: reported K9, verified K10, checked K9; community 110105002001: K9, K10 valid,
    # K10 from a citizen alone -> 漏报率 1/2
    assert insp2["counts"] == counts(reported=1, valid=1, verified=1, verified_on_time=1,
                                     checked=1, checked_on_time=1)
    assert insp2["rates"] == {
        "valid_report_rate": 1.0, "filed_on_time_rate": None, "dispatch_accuracy": None,
        "handling_rate": None, "handled_on_time_rate": None, "closing_rate": None,
        "closed_on_time_rate": None, "rework_rate": None, "verified_on_time_rate": 1.0,
        "checked_on_time_rate": 1.0, "missed_rate": 0.5}
    # inspector = 40 % 有效上报率 + 20 % (1 - 漏报率) + 20 % 按期核实率 + 20 % 按期核查率
    # insp1: 100 * (0.4*1 + 0.2*5/6 + 0.2*2/3 + 0.2*3/4) = 40 + 16.667 + 13.333 + 15 = 85 -> B
    # insp2: 100 * (0.4*1 + 0.2*0.5 + 0.2*1 + 0.2*1) = 40 + 10 + 20 + 20 = 90 -> A
    assert (insp1["score"], insp1["grade"]) == (85.0, "B")
    assert (insp2["score"], insp2["grade"]) == (90.0, "A")
    # the operator filed 7 (6 on time), the dispatcher dispatched 8; no score for them
    assert rows["op"]["counts"] == counts(filed=7, filed_on_time=6)
    assert rows["disp"]["counts"] == counts(dispatched=8)
    assert (rows["op"]["score"], rows["op"]["grade"]) == (None, None)
    # the duty chief extended K3 and shelved K7 (closes count for the handler)
    assert rows["chief"]["counts"] == counts(extended=1, shelved=1)
    # w1 handled K1, K2 (reworked once), K3 (late), K9 and holds K8 overdue; w2 returned
    # K3, handled K10 late and holds K4 overdue (it handled K4 only in December)
    assert rows["w1"]["counts"] == counts(handled=4, handled_on_time=3, closed=4,
                                          closed_on_time=3, overdue=1, due_handling=5,
                                          due_closing=5, reworked=1)
    assert rows["w1"]["rates"]["rework_rate"] == 0.25  # 1/4
    assert rows["w2"]["counts"] == counts(returned=1, handled=1, overdue=1, due_handling=2,
                                          due_closing=2)


def test_a_street_prefix_keeps_other_streets_out(month):
    rows = evaluate("people", NOVEMBER, month["city_id"], prefix=STREET_A)
    assert [r["username"] for r in rows] == ["insp1"]
    # asking for districts inside a street gives the street, never the district's total
    regions = evaluate("regions", NOVEMBER, month["city_id"], level=6, prefix=STREET_A)
    assert [r["key"] for r in regions] == [STREET_A]
    assert regions[0]["counts"]["reported"] == 7
    departments = {r["name"]: r for r in evaluate("departments", NOVEMBER, month["city_id"],
                                                  prefix=STREET_A)}
    assert departments["环卫"]["counts"]["handled"] == 3  # K1, K2, K3; not K9 in street B


def test_rates_without_data_are_null_and_grades_follow_the_bands(app_ctx):
    assert indicators.rate(0, 0) is None
    assert scores.score({"a": None, "b": None}, {"a": 0.5, "b": 0.5}) is None
    # a missing component is left out and the others scaled up, when they weigh >= half
    assert scores.score({"a": 0.8, "b": None}, {"a": 0.6, "b": 0.4}) == 80.0
    assert scores.score({"a": 0.8, "b": None}, {"a": 0.4, "b": 0.6}) is None
    bands = scores.weights()["grades"]
    assert [scores.grade(s, bands) for s in (100, 90, 89.99, 75, 60, 40, 39.99, 0)] == \
        ["A", "A", "B", "B", "C", "D", "E", "E"]


def test_weights_and_bands_come_from_configuration(app, month):
    app.config["GRIDMGR_SCORE_WEIGHTS"] = {"department": {"closing_rate": 1.0},
                                           "grades": [["pass", 50], ["fail", 0]]}
    try:
        rows = {r["name"]: r for r in evaluate("departments", NOVEMBER, month["city_id"])}
    finally:
        del app.config["GRIDMGR_SCORE_WEIGHTS"]
    assert (rows["环卫"]["score"], rows["环卫"]["grade"]) == (80.0, "pass")
    assert (rows["市政"]["score"], rows["市政"]["grade"]) == (0.0, "fail")


def test_the_stats_command_prints_the_month(runner, month):
    from gridmgr.evaluation.cli import stats_command

    result = runner.invoke(stats_command, ["--period", "2026-11", "--level", "street"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "regions 2026-11" in lines[0]
    street_a = next(line for line in lines if STREET_A in line)
    assert "67.98" in street_a and " C " in street_a and "62.5%" not in street_a
    assert "66.7%" in street_a  # 结案率 4/6
    assert result.output.index(STREET_A) < result.output.index(STREET_B)  # best score first
    people = runner.invoke(stats_command, ["--period", "2026-11", "--table", "people",
                                           "--region", STREET_B, "--format", "csv"])
    assert people.exit_code == 0, people.output
    assert people.output.splitlines()[1].startswith(f"{month['users']['insp2']},insp2,insp2,")
    refused = runner.invoke(stats_command, ["--period", "2026-13"])
    assert refused.exit_code == 1 and "YYYY-MM" in refused.output
