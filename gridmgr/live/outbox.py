"""The outbox: every live event is a row written in the same transaction as the change it reports.

Delivery happens after commit (``gridmgr.live.relay``); the row's ``seq`` is the event's
sequence number that clients send back as ``since`` to replay what they missed.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, DateTime, String, Text, func, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.event import listens_for
from sqlalchemy.orm import Mapped, mapped_column

from gridmgr.extensions import db

# PostgreSQL NOTIFY channel raised by a trigger on every outbox insert.
NOTIFY_CHANNEL = "gridmgr_live"
# Transaction-level advisory lock taken right before an outbox insert: sequence numbers are then
# handed out in commit order, so a relay that has delivered seq N never sees N-1 commit later.
# Held only from the flush that inserts the row to commit.
OUTBOX_LOCK = 0x6C697665  # "live"


class LiveEvent(db.Model):
    """One event of the live channel, addressed to one or more rooms."""

    __tablename__ = "live_events"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    event: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict] = mapped_column(JSONB)
    rooms: Mapped[list[str]] = mapped_column(ARRAY(Text))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True)


def publish(event: str, payload: dict, rooms: list[str]) -> None:
    """Add an event to the current session's transaction; it is delivered after commit.

    The row is inserted when the session flushes (normally at commit), under the outbox lock.
    """
    if not rooms:
        return
    payload = json.loads(json.dumps(payload, default=_jsonable))
    db.session.add(LiveEvent(event=event, payload=payload, rooms=sorted(set(rooms))))


@listens_for(LiveEvent, "before_insert")
def _take_outbox_lock(mapper, connection, target) -> None:
    """Hold the outbox lock from the insert (when the sequence number is drawn) to commit."""
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": OUTBOX_LOCK})


def _jsonable(value):
    """Dates as ISO 8601, decimals as numbers: what a payload built from a row may hold."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"live event payloads must be JSON; got {type(value).__name__}")
