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
from gridmgr.cases.steps import WORK_STATES, states_sql
from gridmgr.categories.operations import RESPONSIBLE_DEPARTMENT_SQL
from gridmgr.database.prepared import PARAMETER, Prepared
from gridmgr.extensions import db
from gridmgr.grids.models import CODE_LENGTH

ESCALATION = ("community", "street", "district")
OPEN_WORK = states_sql(WORK_STATES)


@dataclass(frozen=True)
class Receiver:
    """The rules' answer; ``rule`` says how the worker was found (roster, nearest, or None)."""

    department_id: int | None
    worker_id: int | None
    rule: str | None
    distance_m: float | None = None


# The worker rule in one statement: the rostered workers of the grid whose shift covers the
# local time, fewest open cases first; only when there is none, the on-duty worker of the street
# with a fresh position nearest the case (KNN on the GiST index of positions). Department: the
# override of the category on the grid or its nearest ancestor in the city, else the category's
# own (the rule of ``gridmgr.categories.operations.responsible_department``), when a category is
# given; a case reported at a component goes to the component's owner when one is known
# (``case_components``). The open-case count reads ``ix_cases_worker_id`` for the grid's few
# candidates only.
_RECEIVER_SQL = f"""
WITH rostered AS (
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
    LIMIT 1
), nearest AS (
    SELECT p.user_id,
           ST_Distance(p.position::geography,
                       ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography) AS metres
    FROM worker_presence p
    JOIN users u ON u.id = p.user_id AND u.is_active AND u.role = 'inspector'
    JOIN regions scope ON scope.id = u.region_id
    WHERE NOT EXISTS (SELECT FROM rostered)
      AND p.on_duty AND p.position IS NOT NULL
      AND p.position_at >= now() - make_interval(secs => :max_age)
      AND scope.city_id = :city AND starts_with(scope.code, :street)
      AND p.user_id <> ALL(:exclude)
    ORDER BY p.position <-> ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)
    LIMIT 1
)
SELECT COALESCE((SELECT co.owner_department_id
                 FROM case_components cc JOIN components co ON co.id = cc.component_id
                 WHERE cc.case_id = :case_id),
                {RESPONSIBLE_DEPARTMENT_SQL}) AS department_id,
       COALESCE((SELECT user_id FROM rostered), n.user_id) AS worker_id,
       CASE WHEN EXISTS (SELECT FROM rostered) THEN 'roster'
            WHEN n.user_id IS NOT NULL THEN 'nearest' END AS rule,
       n.metres
FROM (SELECT) AS one LEFT JOIN nearest n ON true
"""
# Planned once per connection: planning cost about as much as running it.
_RECEIVER = Prepared("gridmgr_dispatch_receiver", _RECEIVER_SQL)


def choose_worker(grid_code: str, city_id: int, lon: float, lat: float,
                  exclude: tuple[int, ...] = (), calendar=None,
                  at: datetime | None = None) -> tuple[int | None, str | None, float | None]:
    """(worker id, rule, distance) by roster, then nearest in the street; (None, None, None).
    ``calendar``: the city's, when the caller has it (else it is read)."""
    receiver = _receive(None, grid_code, city_id, lon, lat, exclude, calendar, at)
    return receiver.worker_id, receiver.rule, receiver.distance_m


def choose_receiver(case, exclude: tuple[int, ...] = (), calendar=None,
                    point: tuple[float, float] | None = None) -> Receiver:
    """The department responsible for the case's category at its grid, and a worker, in one
    round trip. ``calendar`` and ``point`` (lon, lat), when the caller already has them."""
    lon, lat = point or case_point(case.id)
    return _receive(case.category.id, case.grid_code, case.city_id, lon, lat, exclude,
                    calendar, case_id=case.id)


def _receive(category_id: int | None, grid_code: str, city_id: int, lon: float, lat: float,
             exclude: tuple[int, ...], calendar=None, at: datetime | None = None,
             case_id: int | None = None) -> Receiver:
    local = (at or datetime.now(UTC)).astimezone((calendar or calendar_for_city(city_id)).tz)
    max_age = float(current_app.config["GRIDMGR_POSITION_MAX_AGE_S"])
    row = _RECEIVER.one({
        "case_id": case_id, "category": category_id, "grid": grid_code, "city": city_id,
        "t": local.time(),
        "dow": local.isoweekday(), "prev": (local - timedelta(days=1)).isoweekday(),
        "exclude": list(exclude), "lon": lon, "lat": lat, "max_age": max_age,
        "street": grid_code[:CODE_LENGTH["street"]]})
    return Receiver(row.department_id, row.worker_id, row.rule,
                    float(row.metres) if row.metres is not None else None)


# The same rule for many cases at once: each case row's own values stand where the one-case
# statement takes parameters, and each city's local time comes with the city's row.
_COLUMNS = {"case_id": "c.id", "category": "c.category_id", "grid": "c.grid_code",
            "city": "c.city_id", "lon": "ST_X(c.location)", "lat": "ST_Y(c.location)",
            "street": f"left(c.grid_code, {CODE_LENGTH['street']})", "t": "k.t",
            "dow": "k.dow", "prev": "k.prev"}
_RECEIVERS = Prepared("gridmgr_dispatch_receivers", f"""
WITH c AS MATERIALIZED (  -- the listed cases by their ids, whatever the city's size
    SELECT id, category_id, grid_code, city_id, location FROM cases WHERE id = ANY(:ids)
)
SELECT c.id AS case_id, r.department_id, r.worker_id, r.rule, r.metres
FROM c
JOIN unnest(CAST(:cities AS integer[]), CAST(:times AS time[]), CAST(:dows AS integer[]),
            CAST(:prevs AS integer[])) AS k(city, t, dow, prev) ON k.city = c.city_id
CROSS JOIN LATERAL ({PARAMETER.sub(lambda m: _COLUMNS.get(m.group(1), m.group(0)),
                                   _RECEIVER_SQL)}) r""")  # planning it cost 5 - 20 ms


def choose_receivers(case_ids: list[int], at: datetime | None = None) -> dict[int, Receiver]:
    """:func:`choose_receiver` for many cases (a dispatcher's list): each city's calendar read
    once, then the rule's own statement for every case in one round trip."""
    if not case_ids:
        return {}
    cities = db.session.scalars(text("SELECT DISTINCT city_id FROM cases WHERE id = ANY(:ids)"),
                                {"ids": list(case_ids)}).all()
    moments = [(at or datetime.now(UTC)).astimezone(calendar_for_city(city).tz)
               for city in cities]
    cursor = _RECEIVERS.execute({
        "ids": list(case_ids), "cities": list(cities),
        "times": [local.time() for local in moments],
        "dows": [local.isoweekday() for local in moments],
        "prevs": [(local - timedelta(days=1)).isoweekday() for local in moments],
        "exclude": [], "max_age": float(current_app.config["GRIDMGR_POSITION_MAX_AGE_S"])})
    try:
        rows = cursor.fetchall()
    finally:
        cursor.close()
    return {case_id: Receiver(department_id, worker_id, rule,
                              float(metres) if metres is not None else None)
            for case_id, department_id, worker_id, rule, metres in rows}


def case_point(case_id: int) -> tuple[float, float]:
    """The case's location as (lon, lat)."""
    row = db.session.execute(text(
        "SELECT ST_X(location) AS lon, ST_Y(location) AS lat FROM cases WHERE id = :id"),
        {"id": case_id}).one()
    return row.lon, row.lat


def escalation_region(grid_code: str, level: str) -> str:
    """The code of the region a case escalates to at ``level`` (its ancestor's code)."""
    return grid_code[:CODE_LENGTH[level]]
