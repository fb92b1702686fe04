"""``gridmgr cases import FILE``: past cases and their timelines from a city's old system."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from gridmgr.errors import DomainError
from gridmgr.legacy.importing import ImportResult, import_history

cases = AppGroup("cases", help="Cases: importing the history of an old system.")


@cases.command("import")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Check the whole file and write nothing.")
def import_command(path: str, dry_run: bool) -> None:
    """Import the past cases in PATH (.csv or .jsonl, one row per step; docs/history-import.md).

    All or nothing: every bad row is listed and nothing is written. A reference imported
    before gets the steps that follow its imported ones, or is skipped when there are none,
    so a second run of the same file changes nothing.
    """
    try:
        result = import_history(path, dry_run=dry_run)
    except DomainError as exc:
        click.echo(f"error [{exc.code}]: {exc.message}", err=True)
        for problem in exc.details.get("problems", []):
            click.echo(f"  {problem['problem']}: {problem['message']}", err=True)
        raise SystemExit(1) from exc
    click.echo(summary(result, dry_run))


def summary(result: ImportResult, dry_run: bool = False) -> str:
    """One line naming what was imported, every reference extended and every one skipped:
    ``imported 2 cases with 9 steps; extended A1 (+3 steps), A2 (+1); skipped A3 (nothing
    new).``"""
    parts = [f"{'would import' if dry_run else 'imported'} {result.cases} cases with "
             f"{result.steps} steps"]
    if result.extended:
        added = [f"{reference} (+{n})" for reference, n in result.extended.items()]
        first_n = next(iter(result.extended.values()))
        added[0] = added[0][:-1] + (" step)" if first_n == 1 else " steps)")
        parts.append(f"{'would extend' if dry_run else 'extended'} {', '.join(added)}")
    if result.skipped:
        parts.append(f"{'would skip' if dry_run else 'skipped'} {', '.join(result.skipped)} "
                     "(nothing new)")
    return "; ".join(parts) + "."
