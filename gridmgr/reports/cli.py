"""``gridmgr report``: the monthly evaluation report of a city or region, as HTML or PDF."""

from __future__ import annotations

import time
from pathlib import Path

import click
from flask.cli import with_appcontext

from gridmgr.errors import DomainError
from gridmgr.evaluation.operations import city_id_for
from gridmgr.reports.monthly import monthly_report
from gridmgr.reports.rendering import LANGUAGES, write


@click.command("report")
@click.option("--period", required=True, help="The month, YYYY-MM, in the city's time zone.")
@click.option("--region", help="Only this region's cases (a district, street, ... code).")
@click.option("--city", help="City slug (needed when there are several).")
@click.option("--lang", type=click.Choice(LANGUAGES), default="zh", show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="report.html or report.pdf")
@with_appcontext
def report_command(period: str, region: str | None, city: str | None, lang: str,
                   out: Path) -> None:
    """The monthly evaluation report: summary, rankings with grades, the grids' map, trends
    and the longest overdue cases."""
    began = time.perf_counter()
    try:
        if out.suffix.lower() not in (".html", ".htm", ".pdf"):
            raise click.ClickException("--out must end in .html or .pdf.")
        report = monthly_report(city_id_for(city), period, prefix=region)
        write(report, out, lang=lang)
    except DomainError as error:
        raise click.ClickException(error.message) from None
    click.echo(f"wrote {out} ({out.stat().st_size // 1024} KiB, "
               f"{time.perf_counter() - began:.1f} s)")
