"""``gridmgr stats``: an evaluation table for a period, printed for people or as CSV/JSON."""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext
from rich.console import Console
from rich.table import Table

from gridmgr.errors import DomainError
from gridmgr.evaluation.operations import city_id_for, city_table
from gridmgr.evaluation.tables import TABLES, to_csv
from gridmgr.grids.models import CODE_LENGTH

# (column title, rate key) shown in the printed table; every rate is in --format csv/json.
_SHOWN_RATES = (("有效上报率", "valid_report_rate"), ("准确派遣率", "dispatch_accuracy"),
                ("按期处置率", "handled_on_time_rate"), ("结案率", "closing_rate"),
                ("按期结案率", "closed_on_time_rate"), ("返工率", "rework_rate"))
_SHOWN_COUNTS = ("reported", "valid", "dispatched", "handled", "closed", "overdue")


@click.command("stats")
@click.option("--period", help="A month, YYYY-MM, in the city's time zone.")
@click.option("--start", help="Instead of --period: first day YYYY-MM-DD (or ISO time).")
@click.option("--end", help="With --start: the day after the last (excluded).")
@click.option("--region", help="Only cases under this region code.")
@click.option("--table", "table", type=click.Choice(TABLES), default="regions",
              show_default=True)
@click.option("--level", type=click.Choice(tuple(CODE_LENGTH)),
              help="Regions: group at this level (default: the one below --region).")
@click.option("--city", help="City slug (needed when there are several).")
@click.option("--format", "fmt", type=click.Choice(("table", "csv", "json")), default="table",
              show_default=True)
@with_appcontext
def stats_command(period: str | None, start: str | None, end: str | None, region: str | None,
                  table: str, level: str | None, city: str | None, fmt: str) -> None:
    """Indicators, scores and grades per region, department, category or person."""
    try:
        result = city_table(table, city_id_for(city), prefix=region, period=period,
                            start=start, end=end, level=level)
    except DomainError as error:
        raise click.ClickException(error.message) from None
    if fmt == "json":
        click.echo(json.dumps(result, ensure_ascii=False, indent=2))
    elif fmt == "csv":
        click.echo(to_csv(result["rows"]), nl=False)
    else:
        click.echo(render(result))


def render(result: dict) -> str:
    """The table as text, one row per region/department/category/person, best score first."""
    title = f"{result['table']} {result['period']['label']}" + (
        f" in {result['region']}" if result["region"] else "")
    grid = Table(title=title)
    for column in ("key", "name", "score", "grade", *_SHOWN_COUNTS):
        grid.add_column(column, justify="right" if column in _SHOWN_COUNTS else "left")
    for title_zh, _ in _SHOWN_RATES:
        grid.add_column(title_zh, justify="right")
    rows = sorted(result["rows"], key=lambda r: (r.get("score") is None, -(r.get("score") or 0),
                                                 r["key"] or ""))
    for row in rows:
        grid.add_row(row["key"] or "", row.get("username") or row["name"] or "",
                     _number(row.get("score")), row.get("grade") or "",
                     *(str(row["counts"][c]) for c in _SHOWN_COUNTS),
                     *(_percent(row["rates"][key]) for _, key in _SHOWN_RATES))
    console = Console(width=220, color_system=None)
    with console.capture() as captured:
        console.print(grid)
    text = "\n".join(line.rstrip() for line in captured.get().strip("\n").splitlines())
    return text + f"\n{len(rows)} rows; null rates show as -.\n"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"
