"""Who receives a case: the responsible department by category (and region), and a worker.

Worker, in order: an on-duty worker rostered on the case's unit grid for the current shift
(the one with fewest open cases first); else the on-duty worker of the same street nearest to
the case by live position (PostGIS KNN ``<->`` on the GiST index of last positions); else none,
and the case is escalated community → street → district (:data:`ESCALATION`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import text

from gridmgr.calendar.deadlines import calendar_for_city
from gridmgr.extensions import db
from gridmgr.grids.models import CODE_LENGTH

ESCALATION = ("community", "street", "district")
DEFAULT_POSITION_MAX_AGE_S = 15 * 60
OPEN_WORK = "('dispatched', 'accepted')"


@dataclass(frozen=True)
class Receiver:
    """The rules' answer; ``rule`` says how the worker was found (roster, nearest, or None)."""

    department_id: int | None
    worker_id: int | None
    rule: str | None
    distance_m: float | None = None


def rostered_workers(grid_code: str, city_id: int, at: datetime | None = None,
                     exclude: tuple[int, ...] = ()) -> list[int]:
    """On-duty workers rostered on the unit grid whose shift covers ``at`` (city time)."""
    local = (at or datetime.now(UTC)).astimezone(calendar_for_city(city_id).tz)
    previous_day = (local - timedelta(days=1)).isoweekday()
    rows = db.session.execute(text(f"""
        SELECT r.user_id
        FROM roster_entries r
        JOIN regions g ON g.id = r.grid_id
        JOIN worker_presence p ON p.user_id = r.user_id AND p.on_duty
        JOIN users u ON u.id = r.user_id AND u.is_active
        WHERE g.code = :grid AND g.city_id = :city AND r.user_id <> ALL(:exclude)
          AND (
            (r.starts IS NULL OR r.ends IS NULL) AND :dow = ANY(r.weekdays)
            OR r.starts <= r.ends AND :t >= r.starts AND :t < r.ends AND :dow = ANY(r.weekdays)
            OR r.starts > r.ends AND (:t >= r.starts AND :dow = ANY(r.weekdays)
                                      OR :t < r.ends AND :prev = ANY(r.weekdays)))
        GROUP BY r.user_id
        ORDER BY (SELECT count(*) FROM cases c
                  WHERE c.worker_id = r.user_id AND c.state IN {OPEN_WORK}), r.user_id
    """), {"grid": grid_code, "city": city_id, "t": local.time(), "dow": local.isoweekday(),
           "prev": previous_day, "exclude": list(exclude)}).scalars().all()
    return list(rows)


def nearest_street_worker(grid_code: str, city_id: int, lon: float, lat: float,
                          exclude: tuple[int, ...] = ()) -> tuple[int, float] | None:
    """The on-duty worker of the case's street with a fresh position nearest the case, and
    the distance in metres; None when nobody of that street is on duty and located."""
    max_age = float(current_app.config.get("GRIDMGR_POSITION_MAX_AGE_S",
                                           DEFAULT_POSITION_MAX_AGE_S))
    row = db.session.execute(text("""
        SELECT p.user_id,
               ST_Distance(p.position::geography,
                           ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography) AS metres
        FROM worker_presence p
        JOIN users u ON u.id = p.user_id AND u.is_active AND u.role = 'inspector'
        JOIN regions scope ON scope.id = u.region_id
        WHERE p.on_duty AND p.position IS NOT NULL
          AND p.position_at >= now() - make_interval(secs => :max_age)
          AND scope.city_id = :city AND starts_with(scope.code, :street)
          AND p.user_id <> ALL(:exclude)
        ORDER BY p.position <-> ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)
        LIMIT 1
    """), {"lon": lon, "lat": lat, "city": city_id, "max_age": max_age,
           "street": grid_code[:CODE_LENGTH["street"]], "exclude": list(exclude)}).first()
    return (row.user_id, float(row.metres)) if row else None


def choose_worker(grid_code: str, city_id: int, lon: float, lat: float,
                  exclude: tuple[int, ...] = ()) -> tuple[int | None, str | None, float | None]:
    """(worker id, rule, distance) by roster, then nearest in the street; (None, None, None)."""
    rostered = rostered_workers(grid_code, city_id, exclude=exclude)
    if rostered:
        return rostered[0], "roster", None
    nearest = nearest_street_worker(grid_code, city_id, lon, lat, exclude)
    if nearest:
        return nearest[0], "nearest", nearest[1]
    return None, None, None


def choose_receiver(case, exclude: tuple[int, ...] = ()) -> Receiver:
    """The department responsible for the case's category at its grid, and a worker."""
    from gridmgr.categories.operations import responsible_department

    department = responsible_department(case.category, case.grid_code, case.city_id)
    lon, lat = case_point(case.id)
    worker_id, rule, distance = choose_worker(case.grid_code, case.city_id, lon, lat, exclude)
    return Receiver(department.id if department else None, worker_id, rule, distance)


def case_point(case_id: int) -> tuple[float, float]:
    """The case's location as (lon, lat)."""
    row = db.session.execute(text(
        "SELECT ST_X(location) AS lon, ST_Y(location) AS lat FROM cases WHERE id = :id"),
        {"id": case_id}).one()
    return row.lon, row.lat


def escalation_region(grid_code: str, level: str) -> str:
    """The code of the region a case escalates to at ``level`` (its ancestor's code)."""
    return grid_code[:CODE_LENGTH[level]]
