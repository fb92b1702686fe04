"""Writing and reading the audit log.

The log sits below the domains whose changes it records (people, categories, calendars,
rosters, keys): it knows an actor only by id and name, and each domain says which fields of
its records it keeps. Administrators read it through ``gridmgr.people.operations.audit_log``,
which asks the policy.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import select, text

from gridmgr.audit.models import AuditEntry
from gridmgr.extensions import db


class Actor(Protocol):
    """Whoever made a change: a user (``id`` 0 for the console's administrator, never stored)."""

    id: int
    username: str


def record(actor: Actor | None, action: str, target_kind: str, target_id, *,
           before: dict | None = None, after: dict | None = None) -> None:
    """Add one entry in the caller's transaction: it is kept exactly when the change is."""
    db.session.add(AuditEntry(
        # The console's administrator (id 0) is never stored: her rows name her only.
        actor_id=actor.id if actor is not None and actor.id else None,
        actor_name=actor.username if actor is not None else None, action=action,
        target_kind=target_kind, target_id=str(target_id) if target_id is not None else None,
        before=before, after=after))


# The city an entry concerns: the one its before or after names, or that of the region they
# name (a user scoped to a street or grid).
_ENTRY_CITY = """COALESCE(
    CAST(audit_log.after ->> 'city_id' AS integer), CAST(audit_log.before ->> 'city_id' AS integer),
    (SELECT r.city_id FROM regions r WHERE r.id = CAST(COALESCE(
        audit_log.after ->> 'region_id', audit_log.before ->> 'region_id') AS integer)))"""


# The region an entry concerns: the grid or region its before or after names (a roster entry,
# a region's own department, a user scoped to a street or grid); none for a city-wide change.
_ENTRY_REGION = """COALESCE(
    audit_log.after ->> 'grid_code', audit_log.before ->> 'grid_code',
    audit_log.after ->> 'region_code', audit_log.before ->> 'region_code',
    (SELECT r.code FROM regions r WHERE r.id = CAST(COALESCE(
        audit_log.after ->> 'region_id', audit_log.before ->> 'region_id') AS integer)))"""


def read_log(city_id: int | None, limit: int = 200,
             region_prefix: str | None = None) -> list[AuditEntry]:
    """The latest entries, newest first; of one city's only when ``city_id`` is given, and
    only those located under ``region_prefix`` when it is (a city-wide change is not)."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(min(max(limit, 1), 1000))
    if city_id is not None:
        query = query.where(text(f"{_ENTRY_CITY} = :city").bindparams(city=city_id))
    if region_prefix is not None:
        query = query.where(text(f"starts_with(COALESCE({_ENTRY_REGION}, ''), :prefix)")
                            .bindparams(prefix=region_prefix))
    return list(db.session.scalars(query))
