"""``gridmgr cases import FILE``: past cases and their timelines from a city's old system."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from gridmgr.errors import DomainError
from gridmgr.legacy.importing import import_history

cases = AppGroup("cases", help="Cases: importing the history of an old system.")


@cases.command("import")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Check the whole file and write nothing.")
def import_command(path: str, dry_run: bool) -> None:
    """Import the past cases in PATH (.csv or .jsonl, one row per step; docs/history-import.md).

    All or nothing: every bad row is listed and nothing is written. References imported
    before are skipped, so a second run of the same file changes nothing.
    """
    try:
        result = import_history(path, dry_run=dry_run)
    except DomainError as exc:
        click.echo(f"error [{exc.code}]: {exc.message}", err=True)
        for problem in exc.details.get("problems", []):
            click.echo(f"  {problem['problem']}: {problem['message']}", err=True)
        raise SystemExit(1) from exc
    click.echo(f"{'would import' if dry_run else 'imported'} {result.cases} cases with "
               f"{result.steps} steps; skipped {len(result.skipped)} already imported.")
