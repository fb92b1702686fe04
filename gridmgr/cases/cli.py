"""``gridmgr workflow ...``: the reference page of the case workflow, made from its table."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup

from gridmgr.cases.models import STATES
from gridmgr.cases.steps import (
    GUARDS,
    NEEDS,
    PREVIOUS,
    SAME,
    STAGES,
    TABLE,
    describe,
)
from gridmgr.people.policy import RELATIONS, ROLE_ACTIONS

PAGE = Path(__file__).resolve().parents[2] / "docs" / "workflow.md"

workflow = AppGroup("workflow", help="The case workflow's table.")


def roles_for(permission: str | None) -> list[str]:
    """The roles whose list holds ``permission`` (the policy's, admin last)."""
    if permission is None:
        return []
    return [role for role in sorted(ROLE_ACTIONS, key=lambda r: (r == "admin", r))
            if permission in ROLE_ACTIONS[role]]


def workflow_page() -> str:
    """docs/workflow.md: states, actions, who, needs and clocks, from the workflow table."""
    lines = [
        "# The case workflow",
        "",
        "Generated from the workflow table (`gridmgr/cases/steps.py`) by "
        "`gridmgr workflow doc > docs/workflow.md`; a test fails when this page is stale. "
        "Change the table, not this page.",
        "",
        "Every step is one conditional UPDATE of the case with its history row and live event, "
        "written by one statement. A step taken from another state is 409 `conflict`; a role "
        "without the permission, a target outside the actor's scope or a missing relation is "
        "403 `forbidden`; a missing need is 422 with its own code; a guard is 409 with its "
        "code. Each case answer of the API lists the caller's `available_actions`.",
        "",
        "## States",
        "",
        ", ".join(f"`{state}`" for state in STATES),
        "",
        "## Actions",
        "",
        "| action | from | to | who | needs | clocks | event |",
        "|---|---|---|---|---|---|---|",
    ]
    for action in TABLE:
        target = {SAME: "(same)", PREVIOUS: "(as before shelving)"}.get(action.target,
                                                                        action.target)
        if action.otherwise:
            target += f"; {action.otherwise.flag}=false: {action.otherwise.target}"
        who = ", ".join(roles_for(action.permission)) or "the system"
        if action.relation:
            who += f" ({RELATIONS[action.relation]})"
        lines.append(
            f"| `{action.name}` | {', '.join(action.sources) or '—'} | {target} | {who} | "
            f"{', '.join(action.needs) or '—'} | {'; '.join(action.clocks.phrases()) or '—'} "
            f"| {action.event} |")
    lines += ["", "## Each action", ""]
    lines += [f"- {describe(action)}" for action in TABLE]
    lines += ["", "## Needs", ""]
    lines += [f"- `{name}`: {text}" for name, text in NEEDS.items()]
    lines += ["", "## Guards", ""]
    lines += [f"- `{name}` (409): {text}" for name, text in GUARDS.items()]
    lines += ["", "## Stage clocks", "",
              "Each stage has a deadline from the category's limit for it and the city's "
              "working calendar: " + ", ".join(f"`{stage}`" for stage in STAGES) + ".", ""]
    return "\n".join(lines)


@workflow.command("doc", with_appcontext=False)
@click.option("--check", is_flag=True,
              help=f"Fail when {PAGE.name} differs from the table instead of printing it.")
def doc_command(check: bool) -> None:
    """Print the workflow's reference page (docs/workflow.md) made from its table."""
    page = workflow_page()
    if not check:
        click.echo(page, nl=False)
        return
    if not PAGE.exists() or PAGE.read_text(encoding="utf-8") != page:
        raise click.ClickException(f"{PAGE} is stale: run gridmgr workflow doc > "
                                   "docs/workflow.md")
    click.echo(f"{PAGE.name} is up to date")
