"""A director prints November 2026's report for the small hand-computed month of
``evaluation_world.py`` and reads it as a PDF: every section is there, with the month's
numbers (the same as ``test_evaluation_month.py`` works out by hand)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from evaluation_world import GRIDS, STREET_A, STREET_B, build_month
from pypdf import PdfReader

from gridmgr.reports.cli import report_command
from gridmgr.reports.monthly import monthly_report
from gridmgr.reports.rendering import render_html, write

SECTIONS_ZH = ("一、总体情况", "二、区域综合评价排名", "三、网格案件分布",
               "四、专业部门综合评价排名", "五、监督员综合评价排名", "六、案件趋势",
               "七、超期未办结案件", "附：指标与等级说明")
AFTER = datetime(2027, 1, 1, tzinfo=UTC)


@pytest.fixture
def month(app_ctx, make_user):
    return build_month(make_user)


def pdf_text(path) -> str:
    reader = PdfReader(path)
    return re.sub(r"[ \t]+", " ", "\n".join(page.extract_text() for page in reader.pages))


def test_the_pdf_report_has_its_sections_and_the_months_numbers(month, tmp_path):
    out = tmp_path / "report.pdf"
    # read after the month: the overdue cases are counted at its end
    write(monthly_report(month["city_id"], "2026-11", now=AFTER), out)
    assert out.read_bytes().startswith(b"%PDF-")
    assert len(PdfReader(out).pages) >= 2
    text = pdf_text(out)
    for title in SECTIONS_ZH:
        assert title in text
    assert "测试市" in text and "2026年11月" in text
    # summary: 9 reported, 8 valid, 5 closed; 结案率 5/8, 按期结案率 4/8; 2 overdue (K4, K8)
    assert "本月共上报案件 9 件，有效上报 8 件" in text
    assert "结案率 62.5%" in text and "按期结案率 50.0%" in text
    assert "超期未办结 2 件" in text
    # streets ranked with scores and grades: A 67.98 C before B 57.86 D
    assert re.search(rf"1 {STREET_A} street {STREET_A} 7 4 2 85\.7% 66\.7% 50\.0% 67\.98 C",
                     text)
    assert re.search(rf"2 {STREET_B} street {STREET_B} 2 1 0 100\.0% 50\.0% 50\.0% 57\.86 D",
                     text)
    # departments: 环卫 74.50 C, 市政 32.50 E; inspectors: insp2 90.00 A, insp1 85.00 B
    assert re.search(r"1 环卫 .*74\.50 C", text) and re.search(r"2 市政 .*32\.50 E", text)
    assert re.search(r"1 insp2 .*90\.00 A", text) and re.search(r"2 insp1 .*85\.00 B", text)
    # the overdue list: K8 (deadline 10-25 18:00, 36.25 days before 12-01) before K4
    k8, k4 = "20261100000008", "20261100000004"
    assert text.index(k8) < text.index(k4)
    assert re.search(rf"{k8} 类别X {GRIDS['A1']}", text) and "36.2" in text
    assert re.search(rf"{k4} 类别Y {GRIDS['A2']}", text) and "5.2" in text


def test_a_streets_report_keeps_to_the_street(month, tmp_path):
    report = monthly_report(month["city_id"], "2026-11", prefix=STREET_B)
    assert [g["code"] for g in report.grids] == [GRIDS["B1"]]
    assert report.totals["counts"]["reported"] == 2
    assert [p["username"] for p in report.inspectors] == ["insp2"]
    assert report.overdue == []
    html = render_html(report)
    assert STREET_A not in html and "insp1" not in html
    assert "统计截至时没有超期未办结的案件。" in html


def test_the_numbers_behind_the_charts(month):
    report = monthly_report(month["city_id"], "2026-11", now=AFTER)
    # grids shaded by cases reported: A1 K1 K2 K5 K7, A2 K3 K4 K6, B1 K9 K10
    assert {g["code"]: (g["reported"], g["overdue"]) for g in report.grids} == {
        GRIDS["A1"]: (4, 1), GRIDS["A2"]: (3, 1), GRIDS["B1"]: (2, 0)}
    # ranked at street level (the district holds one street... two here; the city one district)
    assert report.region_level == 9
    daily = {str(d["day"]): (d["reported"], d["closed"]) for d in report.daily}
    assert daily["2026-11-04"] == (0, 2)  # K1 and K9 closed
    assert daily["2026-11-21"] == (1, 1)  # K5 reported and handled on the spot
    assert sum(d["reported"] for d in report.daily) == 9
    assert sum(d["closed"] for d in report.daily) == 5
    # six months of trend, October's only case (K8) counted there
    assert [t["label"] for t in report.trend] == [
        "2026-06", "2026-07", "2026-08", "2026-09", "2026-10", "2026-11"]
    assert report.trend[-2]["reported"] == 1
    assert report.trend[-1]["rates"]["closed_on_time_rate"] == 0.5
    assert [c["code"] for c in report.overdue] == ["20261100000008", "20261100000004"]
    assert round(report.overdue[0]["days_overdue"], 2) == 36.25
    assert report.overdue[0]["department_zh"] == "环卫"


def test_the_report_command_writes_a_pdf(runner, month, tmp_path):
    out = tmp_path / "street.pdf"
    result = runner.invoke(report_command, ["--period", "2026-11", "--region", STREET_A,
                                            "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output
    text = pdf_text(out)
    assert "测试市 · street 110105001" in text and "本月共上报案件 7 件" in text
    assert STREET_B not in text


def test_the_english_report_and_bad_requests(runner, month, tmp_path):
    out = tmp_path / "report.html"
    result = runner.invoke(report_command, ["--period", "2026-11", "--lang", "en",
                                            "--out", str(out)])
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert "1. Summary" in html and "7. Overdue cases" in html and "November 2026" in html
    assert "data:image/svg+xml;base64," in html
    refused = runner.invoke(report_command, ["--period", "2026-13", "--out", str(out)])
    assert refused.exit_code == 1 and "YYYY-MM" in refused.output
    refused = runner.invoke(report_command, ["--period", "2026-11", "--region", "999",
                                             "--out", str(out)])
    assert refused.exit_code == 1 and "999" in refused.output
    refused = runner.invoke(report_command, ["--period", "2026-11", "--out",
                                             str(tmp_path / "report.docx")])
    assert refused.exit_code == 1 and ".pdf" in refused.output


def test_now_in_the_middle_of_the_month_counts_overdue_until_now(month):
    halfway = datetime(2026, 11, 26, tzinfo=timezone(timedelta(hours=8)))
    report = monthly_report(month["city_id"], "2026-11", now=halfway)
    # K4's deadline 11-25 18:00 passed; K8's long before
    assert [c["code"] for c in report.overdue] == ["20261100000008", "20261100000004"]
    assert round(report.overdue[1]["days_overdue"], 2) == 0.25
