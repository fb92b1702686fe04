"""Writing and reading the audit log."""

from __future__ import annotations

from sqlalchemy import select, text

from gridmgr.audit.models import AuditEntry
from gridmgr.extensions import db
from gridmgr.people.models import Department, User
from gridmgr.people.policy import authorize, scope_filter, user_city_id


def record(actor: User | None, action: str, target_kind: str, target_id, *,
           before: dict | None = None, after: dict | None = None) -> None:
    """Add one entry in the caller's transaction: it is kept exactly when the change is."""
    db.session.add(AuditEntry(
        # The console's administrator (id 0) is never stored: her rows name her only.
        actor_id=actor.id if actor is not None and actor.id else None,
        actor_name=actor.username if actor is not None else None, action=action,
        target_kind=target_kind, target_id=str(target_id) if target_id is not None else None,
        before=before, after=after))


def user_fields(user: User) -> dict:
    """What the log keeps of a user: access and profile, never the password's hash."""
    return {"username": user.username, "role": user.role, "display_name": user.display_name,
            "region_id": user.region_id, "city_id": user.city_id,
            "department_id": user.department_id, "is_active": user.is_active}


def department_fields(department: Department) -> dict:
    return {"name": department.name, "name_en": department.name_en,
            "city_id": department.city_id}


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


def read_log(actor: User, limit: int = 200) -> list[AuditEntry]:
    """The latest entries, newest first, for an administrator; a city's administrator reads
    the entries of her city only, a region's administrator those of her region only (a
    city-wide change is beyond her scope, as the policy says of any city-wide target)."""
    city, prefix = user_city_id(actor), scope_filter(actor)
    authorize(actor, "admin.users", region_code=prefix, city_id=city)
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(min(max(limit, 1), 1000))
    if city is not None:
        query = query.where(text(f"{_ENTRY_CITY} = :city").bindparams(city=city))
    if prefix is not None:
        query = query.where(text(f"starts_with(COALESCE({_ENTRY_REGION}, ''), :prefix)")
                            .bindparams(prefix=prefix))
    return list(db.session.scalars(query))
