"""Workers go on and off duty and send position pings; the last position of each is kept."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import current_app
from sqlalchemy import text

from gridmgr.errors import Conflict, DomainError, NotFound
from gridmgr.extensions import db
from gridmgr.geo.coords import to_wgs84
from gridmgr.live import publish
from gridmgr.live.rooms import worker_rooms
from gridmgr.people.models import User
from gridmgr.people.policy import authorize


class TooFrequent(DomainError):
    """A position ping sooner than the throttle allows: 429 with the seconds to wait."""

    status = 429

    def __init__(self, retry_after: float):
        super().__init__("too_frequent", f"Send at most one position every "
                         f"{position_interval():g} s; try again in {retry_after:.1f} s.",
                         retry_after=round(retry_after, 1))
        self.retry_after = retry_after


def position_interval() -> float:
    """Seconds between two stored positions of one worker (``GRIDMGR_POSITION_INTERVAL_S``)."""
    return float(current_app.config["GRIDMGR_POSITION_INTERVAL_S"])


def set_duty(actor: User, on_duty: bool, worker_id: int | None = None) -> dict:
    """Put a worker (the actor unless a duty chief names another) on or off duty; commits."""
    worker = actor if worker_id in (None, actor.id) else db.session.get(User, worker_id)
    if worker is None:
        raise NotFound(f"No user has the id {worker_id}.", code="user_not_found")
    authorize(actor, "duty.set", region_code=worker.region.code if worker.region else None,
              worker_id=worker.id)
    row = db.session.execute(text("""
        INSERT INTO worker_presence (user_id, on_duty, duty_changed_at)
        VALUES (:id, :on, now())
        ON CONFLICT (user_id) DO UPDATE SET on_duty = EXCLUDED.on_duty,
            duty_changed_at = CASE WHEN worker_presence.on_duty = EXCLUDED.on_duty
                                   THEN worker_presence.duty_changed_at ELSE now() END
        RETURNING on_duty, duty_changed_at
    """), {"id": worker.id, "on": on_duty}).one()
    publish("worker.duty", {"worker_id": worker.id, "on_duty": row.on_duty,
                            "since": row.duty_changed_at}, worker_rooms(worker))
    db.session.commit()
    return {"worker_id": worker.id, "on_duty": row.on_duty, "since": row.duty_changed_at}


def record_position(actor: User, lon: float, lat: float, accuracy_m: float | None = None,
                    coord_sys: str = "wgs84", at: datetime | None = None) -> dict:
    """Keep an on-duty worker's position (at most one per interval; else 429); commits."""
    authorize(actor, "position.send", region_code=actor.region.code if actor.region else None,
              worker_id=actor.id)
    lon, lat = to_wgs84(lon, lat, coord_sys)
    interval = position_interval()
    row = db.session.execute(text("""
        UPDATE worker_presence
        SET position = ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), accuracy_m = :accuracy,
            position_at = :at
        WHERE user_id = :id AND on_duty
          AND (position_at IS NULL OR position_at <= :at - make_interval(secs => :interval))
        RETURNING position_at
    """), {"id": actor.id, "lon": lon, "lat": lat, "accuracy": accuracy_m,
           "at": at or datetime.now(UTC), "interval": interval}).one_or_none()
    if row is None:
        state = db.session.execute(text(
            "SELECT on_duty, position_at FROM worker_presence WHERE user_id = :id"),
            {"id": actor.id}).one_or_none()
        db.session.rollback()
        if state is None or not state.on_duty:
            raise Conflict("Go on duty before sending positions.", code="off_duty")
        waited = ((at or datetime.now(UTC)) - state.position_at).total_seconds()
        raise TooFrequent(max(interval - waited, 0.1))
    payload = {"worker_id": actor.id, "name": actor.display_name or actor.username,
               "lon": lon, "lat": lat, "accuracy_m": accuracy_m, "at": row.position_at}
    publish("worker.position", payload, worker_rooms(actor))
    db.session.commit()
    return {**payload, "stored": True}


def presence_of(user_id: int) -> dict | None:
    """A worker's duty state and last position, or None when never on duty."""
    row = db.session.execute(text("""
        SELECT on_duty, duty_changed_at, ST_X(position) AS lon, ST_Y(position) AS lat,
               accuracy_m, position_at
        FROM worker_presence WHERE user_id = :id"""), {"id": user_id}).one_or_none()
    return dict(row._mapping) if row else None
