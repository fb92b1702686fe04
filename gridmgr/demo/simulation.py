"""What the demo city's people do by themselves while ``gridmgr demo serve`` runs.

- **The inspectors' phones**: every on-duty demo inspector walks round the unit grid it is
  rostered on, and its phone sends a position each ``GRIDMGR_POSITION_INTERVAL_S`` through
  ``record_position``, the function behind ``POST /api/v1/positions``.
- **The operator's desk** for the automatically dispatched categories: the workflow has no
  filing without an operator (立案 is a decision), so demo-operator files each inspector's
  report of such a category, and each citizen's once an inspector has verified it on site,
  within a couple of seconds. Filing dispatches it by the rules in the same step. Reports of
  the other categories wait for a person at the operator's desk.
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import select, text

from gridmgr.cases.workflow import StepInput, take_step
from gridmgr.dispatch.duty import position_interval, record_position
from gridmgr.errors import DomainError
from gridmgr.extensions import db
from gridmgr.people.models import User

log = logging.getLogger(__name__)
OPERATOR = "demo-operator"
OPERATOR_NOTE = "演示：受理员立案"
FILING_PERIOD_S = 2.0
# Points of a round: an inspector walks round its grid (about 400 m) in this many positions.
ROUND_POINTS = 40

# Where each on-duty demo inspector is at ``fraction`` of its round on its (first) rostered grid.
_PATROL_POINTS = text("""
SELECT u.id, ST_X(p.point) AS lon, ST_Y(p.point) AS lat
FROM users u
JOIN worker_presence w ON w.user_id = u.id AND w.on_duty
JOIN LATERAL (SELECT grid_id FROM roster_entries r WHERE r.user_id = u.id
              ORDER BY r.id LIMIT 1) r ON true
JOIN regions g ON g.id = r.grid_id
CROSS JOIN LATERAL (SELECT ST_LineInterpolatePoint(
    ST_ExteriorRing(ST_GeometryN(g.geom, 1)), :fraction) AS point) p
WHERE u.username LIKE 'demo-%' AND u.role = 'inspector' AND u.is_active
ORDER BY u.id
""")

# Reports of automatically dispatched categories that the operator may file now.
_WAITING_REPORTS = text("""
SELECT c.id FROM cases c JOIN categories k ON k.id = c.category_id
WHERE k.auto_dispatch AND c.city_id = :city
  AND (c.state = 'verified' OR c.state = 'reported' AND c.source <> 'citizen')
ORDER BY c.id LIMIT 100
""")


def move_patrols(step: int) -> int:
    """Send each on-duty demo inspector's position at ``step`` of its round; how many were
    stored (a phone of its own may have sent one just before: that one stays)."""
    fraction = (step % ROUND_POINTS) / ROUND_POINTS
    moved = 0
    for row in db.session.execute(_PATROL_POINTS, {"fraction": fraction}).all():
        try:
            record_position(db.session.get(User, row.id), row.lon, row.lat)
            moved += 1
        except DomainError:  # too soon after its own phone's position, or gone off duty
            db.session.rollback()
    return moved


def file_waiting_reports() -> int:
    """File, as demo-operator, every report of an automatically dispatched category that
    may be filed; how many were filed."""
    operator = db.session.scalar(select(User).where(User.username == OPERATOR,
                                                    User.is_active))
    if operator is None:
        return 0
    filed = 0
    for case_id in db.session.scalars(_WAITING_REPORTS, {"city": operator.city_id}).all():
        try:
            take_step(case_id, "file", operator, StepInput(note=OPERATOR_NOTE))
            filed += 1
        except DomainError:  # someone at the desk was quicker, or the case moved on
            db.session.rollback()
    return filed


def simulate(stop: threading.Event) -> None:
    """Move the patrols and file waiting reports until ``stop`` is set; a failing pass (the
    database restarting, say) is logged and the next one tried a second later."""
    step, next_move, next_filing = 0, 0.0, 0.0
    while not stop.is_set():
        now = time.monotonic()
        try:
            if now >= next_filing:
                next_filing = now + FILING_PERIOD_S
                file_waiting_reports()
            if now >= next_move:
                # A little over the throttle, so that no position of the round is refused.
                next_move = now + position_interval() + 0.5
                move_patrols(step)
                step += 1
        except Exception:
            db.session.rollback()
            log.exception("demo simulation pass failed")
        finally:
            db.session.remove()
        stop.wait(0.5)
