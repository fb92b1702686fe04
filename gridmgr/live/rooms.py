"""Room names of the live channel and who is put in which room on connect.

Rooms: ``city:{city_id}`` (the wall), ``region:{code}`` (any level, grid included),
``department:{id}``, ``worker:{user_id}``. An event about a case goes to its unit grid and every
ancestor region, so a street's centre sees everything in its street.
"""

from __future__ import annotations

from sqlalchemy import select

from gridmgr.extensions import db
from gridmgr.grids.models import CODE_LENGTH, Region, ancestor_codes, ancestor_codes_sql
from gridmgr.people.models import Department, User
from gridmgr.people.policy import can, user_city_id


def region_rooms(code: str) -> list[str]:
    """``region:{code}`` for a region and each ancestor (district first), by code prefix."""
    return [f"region:{prefix}" for prefix in ancestor_codes(code)]


def case_rooms(*, city_id: int | None, grid_code: str | None, department_id: int | None = None,
               worker_id: int | None = None) -> list[str]:
    """Every room an event about a case goes to: its regions, city, department and worker."""
    rooms = region_rooms(grid_code) if grid_code else []
    if city_id is not None:
        rooms.append(f"city:{city_id}")
    if department_id is not None:
        rooms.append(f"department:{department_id}")
    if worker_id is not None:
        rooms.append(f"worker:{worker_id}")
    return rooms


def case_rooms_sql(city_id: str, grid_code: str, more: str = "ARRAY[]::text[]") -> str:
    """:func:`case_rooms` as SQL for a statement that finds the case's place itself: its
    regions and city (``city_id``, ``grid_code``: SQL), with the rooms ``more`` (SQL text[]),
    sorted and once each."""
    return f"""ARRAY(
    SELECT DISTINCT room COLLATE "C" FROM unnest(
        {more} || ('city:' || {city_id})
        || ARRAY(SELECT 'region:' || prefix FROM unnest({ancestor_codes_sql(grid_code)}) prefix)
    ) room
    ORDER BY 1)"""


def worker_rooms(user: User) -> list[str]:
    """Where a worker's position goes: their own street (or scope region) and the city wall."""
    rooms = []
    if user.region is not None:
        rooms.append(f"region:{user.region.code[:CODE_LENGTH['street']]}")
    city_id = user_city_id(user)
    if city_id is not None:
        rooms.append(f"city:{city_id}")
    return rooms


def default_rooms(user: User) -> list[str]:
    """The rooms a user joins on connect: own worker room, department, scope region or city."""
    candidates = [f"worker:{user.id}"]
    if user.department_id is not None:
        candidates.append(f"department:{user.department_id}")
    if user.region is not None:
        candidates.append(f"region:{user.region.code}")
    else:
        city_id = user_city_id(user)
        if city_id is not None:
            candidates.append(f"city:{city_id}")
    return [room for room in candidates if may_join(user, room)]


def may_join(user: User, room: str) -> bool:
    """True when the policy lets ``user`` listen to ``room``."""
    kind, _, value = room.partition(":")
    region_code = value if kind == "region" else None
    return can(user, "live.join", region_code=region_code, city_id=user_city_id(user), room=room,
               room_city_id=_room_city(kind, value, user_city_id(user)))


def _room_city(kind: str, value: str, own_city: int | None) -> int | None:
    """The city a region or department room belongs to (None: no city, or every city).

    Codes are unique only within a city: a code the user's own city has is taken as its own.
    """
    if not value.isdigit() or len(value) > 15 or kind not in ("region", "department"):
        return None
    if kind == "department":
        return db.session.scalar(select(Department.city_id).where(Department.id == int(value)))
    return db.session.scalar(
        select(Region.city_id).where(Region.code == value)
        .order_by((Region.city_id == (own_city or 0)).desc()).limit(1))
