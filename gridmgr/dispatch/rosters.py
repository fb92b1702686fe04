"""Rosters: which worker covers which unit grid, in which shift, on which weekdays."""

from __future__ import annotations

import re
from datetime import time

from sqlalchemy import select

from gridmgr.audit import operations as audit
from gridmgr.dispatch.models import ALL_WEEKDAYS, RosterEntry
from gridmgr.errors import Conflict, InvalidInput, NotFound
from gridmgr.extensions import db
from gridmgr.grids.models import Region
from gridmgr.people.models import User
from gridmgr.people.policy import authorize, scope_filter, user_city_id

WORKER_ROLES = ("inspector",)


def parse_weekdays(value: str | list[int] | None) -> list[int]:
    """``"1-5"``, ``"1,3,5"``, ``"6-7,1"`` or a list of ISO weekdays (1 = Monday) → sorted list."""
    if value is None or value == "":
        return list(ALL_WEEKDAYS)
    if isinstance(value, list):
        days = value
    else:
        if not re.fullmatch(r"\s*[1-7](\s*-\s*[1-7])?(\s*,\s*[1-7](\s*-\s*[1-7])?)*\s*", value):
            raise InvalidInput(f"Weekdays {value!r:.40} must look like 1-5 or 1,3,5 "
                               "(1 = Monday).", code="invalid_weekdays")
        days = []
        for part in value.split(","):
            first, _, last = part.strip().partition("-")
            low, high = int(first), int(last or first)
            if low > high:
                raise InvalidInput(f"Weekday range {part.strip()} runs backwards.",
                                   code="invalid_weekdays")
            days.extend(range(low, high + 1))
    if not days or any(not isinstance(d, int) or isinstance(d, bool) or not 1 <= d <= 7
                       for d in days):
        raise InvalidInput("Weekdays are numbers 1 (Monday) to 7 (Sunday).",
                           code="invalid_weekdays")
    return sorted(set(days))


def parse_shift_time(value: str | time | None) -> time | None:
    """``"08:00"`` → 08:00; None stays None (all day)."""
    if value is None or isinstance(value, time):
        return value
    if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value.strip()):
        raise InvalidInput(f"Shift time {value!r:.20} must be HH:MM.", code="invalid_shift")
    return time.fromisoformat(value.strip())


def find_worker(username: str) -> User:
    """The user called ``username``; 404 ``user_not_found``."""
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"No user is called {username!r:.60}.", code="user_not_found")
    return user


def add_roster_entry(username: str, grid_code: str, starts: str | time | None = None,
                     ends: str | time | None = None, weekdays: str | list[int] | None = None,
                     city_id: int | None = None, actor: User | None = None) -> RosterEntry:
    """Roster a grid worker on a unit grid for a shift; commits, with its audit entry
    (``actor`` None: the command line). 409 when already rostered."""
    user = find_worker(username)
    if user.role not in WORKER_ROLES or not user.is_active:
        raise InvalidInput(f"{username} is not an active grid worker (inspector).",
                           code="not_a_worker")
    grid = find_grid(grid_code, city_id or user.city_id)
    start, end = _shift(starts, ends)
    _refuse_same_shift(user, grid, start, end)
    entry = RosterEntry(user_id=user.id, grid_id=grid.id, starts=start, ends=end,
                        weekdays=parse_weekdays(weekdays))
    db.session.add(entry)
    db.session.flush()
    audit.record(actor, "roster.add", "roster_entry", entry.id, after=audited(entry))
    db.session.commit()
    return entry


def change_roster_entry(entry_id: int, starts: str | time | None = None,
                        ends: str | time | None = None,
                        weekdays: str | list[int] | None = None,
                        actor: User | None = None) -> RosterEntry:
    """Give a roster entry another shift and weekdays; commits, with its audit entry. 404 when
    there is none, 409 when the worker already has that shift on the grid."""
    entry = get_roster_entry(entry_id)
    before = audited(entry)
    start, end = _shift(starts, ends)
    _refuse_same_shift(entry.user, entry.grid, start, end, entry.id)
    entry.starts, entry.ends, entry.weekdays = start, end, parse_weekdays(weekdays)
    db.session.flush()
    if audited(entry) != before:
        audit.record(actor, "roster.change", "roster_entry", entry.id, before=before,
                     after=audited(entry))
    db.session.commit()
    return entry


def _shift(starts: str | time | None, ends: str | time | None) -> tuple[time | None, time | None]:
    """A shift's start and end: both or neither (all day), never the same time."""
    start, end = parse_shift_time(starts), parse_shift_time(ends)
    if (start is None) != (end is None):
        raise InvalidInput("Give both the start and the end of a shift, or neither.",
                           code="invalid_shift")
    if start is not None and start == end:
        raise InvalidInput("A shift cannot start and end at the same time.",
                           code="invalid_shift")
    return start, end


def _refuse_same_shift(user: User, grid: Region, start: time | None, end: time | None,
                       other_than: int | None = None) -> None:
    exists = db.session.scalar(select(RosterEntry).where(
        RosterEntry.user_id == user.id, RosterEntry.grid_id == grid.id,
        RosterEntry.id != (other_than or 0),
        RosterEntry.starts.is_(None) if start is None else RosterEntry.starts == start,
        RosterEntry.ends.is_(None) if end is None else RosterEntry.ends == end))
    if exists is not None:
        raise Conflict(f"{user.username} is already rostered on {grid.code} for that shift.",
                       code="already_rostered", id=exists.id)


def authorize_roster(actor: User, grid: Region, worker: User | None = None) -> None:
    """403 unless ``actor`` manages the grid's roster and, when named, the worker's: a
    street's chief rosters only the street's own workers on the street's grids."""
    authorize(actor, "roster.manage", region_code=grid.code, city_id=grid.city_id)
    if worker is not None:
        authorize(actor, "roster.manage", region_code=scope_filter(worker),
                  city_id=user_city_id(worker))


def find_grid(grid_code: str, city_id: int | None = None) -> Region:
    """The unit grid with ``grid_code`` (in ``city_id`` when given); 404 otherwise."""
    stmt = select(Region).where(Region.code == grid_code, Region.level == "grid")
    if city_id is not None:
        stmt = stmt.where(Region.city_id == city_id)
    grids = db.session.scalars(stmt).all()
    if not grids:
        raise NotFound(f"No unit grid has the code {grid_code!r:.20}.", code="grid_not_found")
    if len(grids) > 1:
        raise InvalidInput(f"Several cities have a unit grid {grid_code}: name the city.",
                           code="city_required")
    return grids[0]


def list_roster(grid_prefix: str | None = None, username: str | None = None) -> list[RosterEntry]:
    """Roster entries, optionally under a region code prefix or for one worker."""
    stmt = (select(RosterEntry).join(Region, Region.id == RosterEntry.grid_id)
            .join(User, User.id == RosterEntry.user_id)
            .order_by(Region.code, User.username, RosterEntry.starts))
    if grid_prefix:
        stmt = stmt.where(Region.code.startswith(grid_prefix))
    if username:
        stmt = stmt.where(User.username == username)
    return list(db.session.scalars(stmt))


def get_roster_entry(entry_id: int) -> RosterEntry:
    """The roster entry with ``entry_id``; 404 ``roster_not_found``."""
    entry = db.session.get(RosterEntry, entry_id)
    if entry is None:
        raise NotFound(f"No roster entry has the id {entry_id}.", code="roster_not_found")
    return entry


def remove_roster_entry(entry_id: int, actor: User | None = None) -> RosterEntry:
    """Delete one roster entry; commits, with its audit entry; 404 when there is none."""
    entry = get_roster_entry(entry_id)
    audit.record(actor, "roster.remove", "roster_entry", entry.id, before=audited(entry))
    db.session.delete(entry)
    db.session.commit()
    return entry


def describe(entry: RosterEntry) -> dict:
    """A roster entry as the API and CLI show it."""
    return {"id": entry.id, "username": entry.user.username, "user_id": entry.user_id,
            "grid_code": entry.grid.code, "grid_name": entry.grid.name,
            "from": entry.starts.strftime("%H:%M") if entry.starts else None,
            "to": entry.ends.strftime("%H:%M") if entry.ends else None,
            "weekdays": list(entry.weekdays)}


def audited(entry: RosterEntry) -> dict:
    """What the audit log keeps of a roster entry: the entry and the city of its grid."""
    return {**describe(entry), "city_id": entry.grid.city_id}
