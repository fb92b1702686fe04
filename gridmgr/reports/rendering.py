"""A monthly report as HTML (Jinja2) and as PDF (WeasyPrint), in Chinese or English."""

from __future__ import annotations

import base64
from datetime import datetime
from itertools import zip_longest
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from gridmgr.errors import InvalidInput
from gridmgr.reports import charts
from gridmgr.reports.monthly import MonthlyReport

LANGUAGES = ("zh", "en")
TABLE_ROWS = 30  # longer rankings show the best and the worst 15

LABELS = {
    "zh": {
        "title": "城市管理月度综合评价报告", "month": "{year}年{month}月",
        "whole_city": "全市", "generated": "生成时间", "period": "统计期间",
        "as_of": "超期统计截至",
        "summary": "一、总体情况", "regions": "二、区域综合评价排名",
        "map": "三、网格案件分布", "departments": "四、专业部门综合评价排名",
        "people": "五、监督员综合评价排名", "trends": "六、案件趋势",
        "overdue": "七、超期未办结案件", "notes": "附：指标与等级说明",
        "indicator": "指标", "this_month": "本月", "last_month": "上月", "change": "变化",
        "rank": "排名", "code": "编码", "name": "名称", "score": "综合得分", "grade": "等级",
        "department": "部门", "inspector": "监督员", "region": "所属区域",
        "category": "类别", "grid": "网格", "deadline": "处置时限", "days_overdue": "超期天数",
        "case_code": "案件编号", "grades": "等级分布", "more": "……（中间 {n} 行从略）",
        "map_caption": "各单元网格本月上报案件数（颜色越深越多），粗线为{level}边界。",
        "map_overdue": "超期案件最多的网格", "no_grids": "本区域没有单元网格。",
        "daily_title": "本月每日上报与结案", "monthly_title": "近几个月案件量与按期率",
        "categories_title": "本月上报最多的类别",
        "no_overdue": "统计截至时没有超期未办结的案件。",
        "overdue_intro": "统计截至 {as_of}，共有 {n} 件已派遣案件超过处置时限仍未办结，"
                         "超期最久的 {shown} 件如下。",
        "nobody": "本月没有可排名的数据。", "day": "日",
        "counts": {"reported": "上报案件", "valid": "有效上报", "filed": "立案",
                   "dispatched": "派遣", "returned": "退回（误派）", "handled": "处置",
                   "closed": "结案", "overdue": "超期未办结", "reworked": "返工",
                   "extended": "延期", "shelved": "挂账", "verified": "核实",
                   "checked": "核查"},
        "rates": {"valid_report_rate": "有效上报率", "filed_on_time_rate": "按时立案率",
                  "dispatch_accuracy": "准确派遣率", "handling_rate": "处置率",
                  "handled_on_time_rate": "按期处置率", "closing_rate": "结案率",
                  "closed_on_time_rate": "按期结案率", "rework_rate": "返工率",
                  "verified_on_time_rate": "按期核实率", "checked_on_time_rate": "按期核查率",
                  "missed_rate": "漏报率"},
        "levels": {6: "区县", 9: "街道", 12: "社区", 15: "单元网格"},
        "sentence": "本月共上报案件 {reported} 件，有效上报 {valid} 件；处置 {handled} 件，"
                    "结案 {closed} 件，结案率 {closing}，按期结案率 {on_time}（上月 {before}）。"
                    "截至月末超期未办结 {overdue} 件。",
        "best_worst": "{what}中综合得分最高的是{best}（{best_score} 分，{best_grade} 级），"
                      "最低的是{worst}（{worst_score} 分，{worst_grade} 级）。",
        "points": "个百分点",
        "notes_text": [
            "有效上报率 = 有效上报 ÷ 上报；按期处置率 = 按期处置 ÷ 应处置；结案率 = 结案 ÷ "
            "应结案；按期结案率 = 按期结案 ÷ 应结案；返工率 = 返工次数 ÷ 处置；准确派遣率 = "
            "（派遣 − 退回）÷ 派遣。应处置、应结案：本月已处置、已结案或月末超期未办结的案件。"
            "分母为零时记为“—”（无数据）。",
            "区域得分 = 有效上报率 20% + 案件量 10% + 结案率 35% + 按期结案率 35%；"
            "部门得分 = 案件量 10% + 结案率 30% + 按期处置率 30% + (1 − 返工率) 30%；"
            "监督员得分 = 有效上报率 40% + (1 − 漏报率) 20% + 按期核实率 20% + 按期核查率 20%"
            "（默认权重，可配置）。",
            "等级：A 90–100，B 75–90，C 60–75，D 40–60，E 40 以下。",
        ],
    },
    "en": {
        "title": "Monthly evaluation report, city management", "month": "{month_name} {year}",
        "whole_city": "whole city", "generated": "Generated", "period": "Period",
        "as_of": "Overdue as of",
        "summary": "1. Summary", "regions": "2. Regions ranked",
        "map": "3. Cases by unit grid", "departments": "4. Departments ranked",
        "people": "5. Inspectors ranked", "trends": "6. Trends",
        "overdue": "7. Overdue cases", "notes": "Notes: indicators and grades",
        "indicator": "Indicator", "this_month": "This month", "last_month": "Last month",
        "change": "Change", "rank": "#", "code": "Code", "name": "Name", "score": "Score",
        "grade": "Grade", "department": "Department", "inspector": "Inspector",
        "region": "Region", "category": "Category", "grid": "Grid", "deadline": "Deadline",
        "days_overdue": "Days overdue", "case_code": "Case", "grades": "Grades",
        "more": "… ({n} rows left out)",
        "map_caption": "Cases reported in each unit grid this month (darker: more); thick "
                       "lines: {level} boundaries.",
        "map_overdue": "Grids with the most overdue cases", "no_grids": "No unit grids here.",
        "daily_title": "Reported and closed per day", "monthly_title":
            "Cases and on-time rates, recent months",
        "categories_title": "Most reported categories",
        "no_overdue": "No dispatched case was past its deadline.",
        "overdue_intro": "As of {as_of}, {n} dispatched cases were past their deadline and "
                         "still open; the {shown} longest overdue:",
        "nobody": "Nothing to rank this month.", "day": "day",
        "counts": {"reported": "Reported", "valid": "Valid reports", "filed": "Filed",
                   "dispatched": "Dispatched", "returned": "Returned (mis-dispatched)",
                   "handled": "Handled", "closed": "Closed", "overdue": "Overdue, open",
                   "reworked": "Reworked", "extended": "Extended", "shelved": "Shelved",
                   "verified": "Verified", "checked": "Checked"},
        "rates": {"valid_report_rate": "Valid report rate",
                  "filed_on_time_rate": "Filed on time", "dispatch_accuracy":
                  "Dispatch accuracy", "handling_rate": "Handling rate",
                  "handled_on_time_rate": "Handled on time", "closing_rate": "Closing rate",
                  "closed_on_time_rate": "Closed on time", "rework_rate": "Rework rate",
                  "verified_on_time_rate": "Verified on time",
                  "checked_on_time_rate": "Checked on time", "missed_rate": "Missed rate"},
        "levels": {6: "district", 9: "street", 12: "community", 15: "unit grid"},
        "sentence": "{reported} cases were reported this month, {valid} of them valid; "
                    "{handled} were handled and {closed} closed: closing rate {closing}, "
                    "closed on time {on_time} (last month {before}). {overdue} cases were "
                    "overdue and open at the month's end.",
        "best_worst": "Best {what}: {best} ({best_score}, grade {best_grade}); lowest: "
                      "{worst} ({worst_score}, grade {worst_grade}).",
        "points": "pp",
        "notes_text": [
            "Valid report rate = valid / reported; handled on time = handled on time / due "
            "for handling; closing rate = closed / due for closing; closed on time = closed "
            "on time / due for closing; rework rate = reworks / handled; dispatch accuracy = "
            "(dispatched − returned) / dispatched. Due: handled or closed in the month, or "
            "overdue and open at its end. A rate over zero cases shows as “—” (no data).",
            "Region score = valid report rate 20 % + case load 10 % + closing rate 35 % + "
            "closed on time 35 %; department = case load 10 % + closing rate 30 % + handled "
            "on time 30 % + (1 − rework rate) 30 %; inspector = valid report rate 40 % + "
            "(1 − missed rate) 20 % + verified on time 20 % + checked on time 20 % "
            "(default weights; configurable).",
            "Grades: A 90–100, B 75–90, C 60–75, D 40–60, E below 40.",
        ],
    },
}
SUMMARY_COUNTS = ("reported", "valid", "filed", "dispatched", "returned", "handled", "closed",
                  "reworked", "extended", "shelved", "overdue")
SUMMARY_RATES = ("valid_report_rate", "filed_on_time_rate", "dispatch_accuracy",
                 "handled_on_time_rate", "closing_rate", "closed_on_time_rate", "rework_rate")
TREND_RATES = ("closing_rate", "closed_on_time_rate", "handled_on_time_rate")
MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August",
               "September", "October", "November", "December")

_environment = Environment(loader=PackageLoader("gridmgr.reports", "templates"),
                           autoescape=select_autoescape(("html",)), trim_blocks=True,
                           lstrip_blocks=True)


def render_html(report: MonthlyReport, *, lang: str = "zh",
                generated: datetime | None = None) -> str:
    """The report as one self-contained HTML page (figures inlined as SVG data)."""
    if lang not in LANGUAGES:
        raise InvalidInput(f"The report's language is one of {', '.join(LANGUAGES)}.",
                           code="bad_language")
    words = LABELS[lang]
    tz = report.period.start.tzinfo
    year, number = (int(part) for part in report.period.label.split("-"))
    month = words["month"].format(year=year, month=number, month_name=MONTH_NAMES[number - 1])
    scope = report.scope_name or words["whole_city"]
    level_name = words["levels"][report.region_level]
    return _environment.get_template("monthly.html").render(
        lang=lang, w=words, r=report, month=month, scope=scope, level_name=level_name,
        font_family=", ".join(f'"{name}"' for name in charts.CJK_FONTS),
        generated=(generated or datetime.now(tz)).astimezone(tz).strftime("%Y-%m-%d %H:%M"),
        period_text=f"{report.period.start:%Y-%m-%d} – "
                    f"{report.period.end.astimezone(tz):%Y-%m-%d} ({tz})",
        as_of=report.as_of.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
        summary=_summary_rows(report, words),
        sentence=_sentence(report, words),
        highlights=[text for text in (
            _best_worst(report.regions, words["levels"][report.region_level], words),
            _best_worst(report.departments, words["department"], words),
            _best_worst(report.inspectors, words["inspector"], words)) if text],
        regions=_trimmed(report.regions), departments=_trimmed(report.departments),
        inspectors=_trimmed(report.inspectors), categories=report.categories[:10],
        grades={"regions": _grades(report.regions),
                "departments": _grades(report.departments),
                "inspectors": _grades(report.inspectors)},
        map_svg=_data_uri(charts.choropleth(
            report.grids, report.outlines, "reported", words["counts"]["reported"]))
        if report.grids else None,
        hot_grids=sorted((g for g in report.grids if g["overdue"]),
                         key=lambda g: (-g["overdue"], g["code"]))[:10],
        daily_svg=_data_uri(charts.daily_flow(*_daily_series(report), {
            "reported": words["counts"]["reported"], "closed": words["counts"]["closed"],
            "day": words["day"]})),
        monthly_svg=_data_uri(charts.monthly_rates(
            [t["label"] for t in report.trend],
            {name: [t["rates"][name] for t in report.trend] for name in TREND_RATES},
            [t["reported"] for t in report.trend],
            {"reported": words["counts"]["reported"], **words["rates"]})),
        overdue=[{**case, "category": case["category_zh"] if lang == "zh"
                  else case["category_en"] or case["category_zh"],
                  "department": case["department_zh"] if lang == "zh"
                  else case["department_en"] or case["department_zh"],
                  "deadline_text": case["deadline"].astimezone(tz).strftime("%Y-%m-%d %H:%M")}
                 for case in report.overdue],
        percent=percent, number=number_text, name_of=_name)


def write(report: MonthlyReport, out: Path, *, lang: str = "zh",
          generated: datetime | None = None) -> Path:
    """Write the report to ``out``: HTML for ``.html``/``.htm``, PDF for ``.pdf``."""
    suffix = out.suffix.lower()
    if suffix not in (".html", ".htm", ".pdf"):
        raise InvalidInput("The report is written as .html or .pdf.", code="bad_format")
    html = render_html(report, lang=lang, generated=generated)
    if suffix == ".pdf":
        from weasyprint import HTML  # imported here: pango loads only when a PDF is asked for

        HTML(string=html).write_pdf(out)
    else:
        out.write_text(html, encoding="utf-8")
    return out


def percent(value: float | None) -> str:
    """0.6667 -> '66.7%'; None (no data) -> '—'."""
    return "—" if value is None else f"{100 * value:.1f}%"


def number_text(value: float | None) -> str:
    """A score with two decimals; None -> '—'."""
    return "—" if value is None else f"{value:.2f}"


def _summary_rows(report: MonthlyReport, words: dict) -> list[tuple]:
    """(count row, rate row) pairs: name, this month, last month, change."""
    now, before = report.totals, report.previous_totals
    counts, rates = [], []
    for name in SUMMARY_COUNTS:
        value = now["counts"][name]
        old = before["counts"][name] if before else None
        counts.append((words["counts"][name], str(value), "—" if old is None else str(old),
                       "—" if old is None else f"{value - old:+d}"))
    for name in SUMMARY_RATES:
        value = now["rates"][name]
        old = before["rates"][name] if before else None
        change = "—" if value is None or old is None else \
            f"{round(100 * (value - old), 1) + 0.0:+.1f} {words['points']}"  # no "-0.0"
        rates.append((words["rates"][name], percent(value), percent(old), change))
    return list(zip_longest(counts, rates))


def _sentence(report: MonthlyReport, words: dict) -> str:
    counts, rates = report.totals["counts"], report.totals["rates"]
    before = report.previous_totals["rates"]["closed_on_time_rate"] \
        if report.previous_totals else None
    return words["sentence"].format(
        reported=counts["reported"], valid=counts["valid"], handled=counts["handled"],
        closed=counts["closed"], closing=percent(rates["closing_rate"]),
        on_time=percent(rates["closed_on_time_rate"]), before=percent(before),
        overdue=counts["overdue"])


def _best_worst(rows: list[dict], what: str, words: dict) -> str | None:
    scored = [row for row in rows if row.get("score") is not None]
    if len(scored) < 2:
        return None
    best, worst = scored[0], scored[-1]
    return words["best_worst"].format(
        what=what.lower(), best=_name(best), best_score=number_text(best["score"]),
        best_grade=best["grade"], worst=_name(worst),
        worst_score=number_text(worst["score"]), worst_grade=worst["grade"])


def _name(row: dict) -> str:
    return row.get("name") or row.get("username") or row.get("key") or "—"


def _trimmed(rows: list[dict]) -> list[tuple[int, dict] | int]:
    """(rank, row) pairs; past :data:`TABLE_ROWS`, the best and worst halves with the number
    of rows left out between them."""
    ranked = list(enumerate(rows, start=1))
    if len(ranked) <= TABLE_ROWS:
        return ranked
    half = TABLE_ROWS // 2
    return [*ranked[:half], len(ranked) - 2 * half, *ranked[-half:]]


def _grades(rows: list[dict]) -> dict[str, int]:
    found: dict[str, int] = {}
    for row in rows:
        if row.get("grade"):
            found[row["grade"]] = found.get(row["grade"], 0) + 1
    return dict(sorted(found.items()))


def _daily_series(report: MonthlyReport) -> tuple[list, list[int], list[int]]:
    """Every day of the month, with zeros for days without cases."""
    tz = report.period.start.tzinfo
    first = report.period.start.astimezone(tz).date()
    last = report.period.end.astimezone(tz).date()
    found = {row["day"]: row for row in report.daily}
    days = [first.fromordinal(n) for n in range(first.toordinal(), last.toordinal())]
    return (days, [found[d]["reported"] if d in found else 0 for d in days],
            [found[d]["closed"] if d in found else 0 for d in days])


def _data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()
