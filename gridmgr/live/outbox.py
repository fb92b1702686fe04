"""The outbox: every live event is a row written in the same transaction as the change it reports.

Delivery happens after commit (``gridmgr.live.relay``); the row's ``seq`` is the event's
sequence number that clients send back as ``since`` to replay what they missed.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, String, Text, func
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gridmgr.extensions import db

# PostgreSQL NOTIFY channel raised by a trigger on every outbox insert (payload: the seq).
NOTIFY_CHANNEL = "gridmgr_live"


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
    """Add an event to the current session's transaction; it is delivered after commit."""
    if not rooms:
        return
    db.session.add(LiveEvent(event=event, payload=payload, rooms=sorted(set(rooms))))
