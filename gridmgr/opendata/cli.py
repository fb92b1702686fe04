"""``gridmgr export``: the daily open-data dump."""

from __future__ import annotations

import os
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from flask import current_app
from flask.cli import with_appcontext

from gridmgr.grids.models import LEVELS
from gridmgr.opendata.exports import (
    CaseFilter,
    case_geojson_chunks,
    case_rows,
    csv_chunks,
    region_geojson_chunks,
)


def _write(path: Path, chunks) -> int:
    """Write ``chunks`` to ``path`` through a temporary file, so a reader never sees half."""
    partial = path.with_name(path.name + ".partial")
    size = 0
    with partial.open("w", encoding="utf-8", newline="") as out:
        for chunk in chunks:
            out.write(chunk)
            size += len(chunk)
    os.replace(partial, path)
    return size


@click.command("export")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write into (made when missing).")
@click.option("--date", "day", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="The day whose new cases to dump (default: yesterday, city time).")
@with_appcontext
def export_command(out: Path, day: datetime | None) -> None:
    """Write the open-data dump of one day: that day's cases (CSV and GeoJSON) and the
    boundaries of every level, into OUT/YYYY-MM-DD/."""
    tz = ZoneInfo(current_app.config["GRIDMGR_TIMEZONE"])
    the_day: date = day.date() if day else datetime.now(tz).date() - timedelta(days=1)
    start = datetime.combine(the_day, datetime.min.time(), tzinfo=tz)
    folder = out / the_day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    selection = CaseFilter(start=start, end=start + timedelta(days=1))
    written = {
        "cases.csv": _write(folder / "cases.csv", csv_chunks(case_rows(selection))),
        "cases.geojson": _write(folder / "cases.geojson",
                                case_geojson_chunks(case_rows(selection))),
    }
    for level in LEVELS:
        name = f"regions-{level}.geojson"
        written[name] = _write(folder / name, region_geojson_chunks(level))
    for name, size in written.items():
        click.echo(f"{folder / name}\t{size} characters")
