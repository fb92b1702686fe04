"""A registered webhook endpoint: where, under which secret, which events, for whom."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, String, Text, func
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from gridmgr.extensions import db


class WebhookEndpoint(db.Model):
    """An endpoint of a department (its events), a region (its cases) or the city (all)."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (
        CheckConstraint("state IN ('active', 'paused')", name="ck_webhook_endpoints_state"),
        CheckConstraint("department_id IS NULL OR region_code IS NULL",
                        name="ck_webhook_endpoints_one_scope"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str]] = mapped_column(ARRAY(Text))
    department_id: Mapped[int | None] = mapped_column(
        ForeignKey("departments.id", ondelete="CASCADE"))
    region_code: Mapped[str | None] = mapped_column(String(15))
    state: Mapped[str] = mapped_column(String(8), server_default="active")
    # Failed attempts in a row; the endpoint is paused when they reach the configured number.
    failures: Mapped[int] = mapped_column(server_default="0")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                        server_default=func.now())
    paused_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
