"""Messages and deliveries waiting, sent or given up; opt-outs; push subscriptions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gridmgr.extensions import db

CHANNELS = ("email", "sms", "push", "webhook")


class NotifyCursor(db.Model):
    """How far in the outbox (``seq``) the worker has fanned events out."""

    __tablename__ = "notify_cursor"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)


class Notification(db.Model):
    """One message to one address, or one delivery of an event to one webhook endpoint."""

    __tablename__ = "notifications"
    __table_args__ = (
        CheckConstraint("channel IN ('email', 'sms', 'push', 'webhook')",
                        name="ck_notifications_channel"),
        CheckConstraint("state IN ('pending', 'sent', 'failed')", name="ck_notifications_state"),
        Index("ix_notifications_due", "next_at", "id",
              postgresql_where=text("state = 'pending' AND endpoint_id IS NULL")),
        Index("ix_notifications_endpoint_pending", "endpoint_id", "event_seq", "id",
              postgresql_where=text("state = 'pending' AND endpoint_id IS NOT NULL")),
        Index("ix_notifications_failed", "id", postgresql_where=text("state = 'failed'")),
        Index("ix_notifications_case_id", "case_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    channel: Mapped[str] = mapped_column(String(8))
    # What it tells: filed, cancelled, handled, closed, dispatched, escalated, approval,
    # endpoint_paused, or the event's name for a webhook delivery.
    kind: Mapped[str] = mapped_column(String(24))
    # An e-mail address, a phone number, a push subscription's id, an endpoint's URL.
    address: Mapped[str] = mapped_column(Text)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    endpoint_id: Mapped[int | None] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_seq: Mapped[int | None] = mapped_column(BigInteger)
    language: Mapped[str] = mapped_column(String(8), server_default="zh")
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    links: Mapped[dict] = mapped_column(JSONB, server_default=text("'{}'"))
    state: Mapped[str] = mapped_column(String(8), server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    give_up_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                 server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class NotifyOptout(db.Model):
    """An address that asked, from the link in a message, to hear no more of a case."""

    __tablename__ = "notify_optouts"

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"),
                                         primary_key=True)
    address: Mapped[str] = mapped_column(Text, primary_key=True)
    created_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                        server_default=func.now())


class PushSubscription(db.Model):
    """A browser's Web Push subscription for a signed-in user (the mobile web app)."""

    __tablename__ = "push_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    endpoint: Mapped[str] = mapped_column(Text, unique=True)
    p256dh: Mapped[str] = mapped_column(Text)
    auth: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(8), server_default="zh")
    created_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                        server_default=func.now())
