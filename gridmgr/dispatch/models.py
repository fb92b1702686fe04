"""Rosters (who covers which unit grid when), duty and last positions, and timed jobs."""

from __future__ import annotations

from datetime import datetime, time

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    Time,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gridmgr.extensions import db
from gridmgr.grids.models import Region
from gridmgr.people.models import User

ALL_WEEKDAYS = [1, 2, 3, 4, 5, 6, 7]  # ISO: Monday is 1


class RosterEntry(db.Model):
    """A worker covers a unit grid during a shift (no times: all day) on some weekdays."""

    __tablename__ = "roster_entries"
    __table_args__ = (
        UniqueConstraint("user_id", "grid_id", "starts", "ends", name="uq_roster_shift"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="CASCADE"),
                                         index=True)
    # A shift that ends before it starts runs over midnight.
    starts: Mapped[time | None] = mapped_column(Time)
    ends: Mapped[time | None] = mapped_column(Time)
    weekdays: Mapped[list[int]] = mapped_column(
        ARRAY(SmallInteger), default=lambda: list(ALL_WEEKDAYS),
        server_default=text("'{1,2,3,4,5,6,7}'"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    user: Mapped[User] = relationship()
    grid: Mapped[Region] = relationship()


class WorkerPresence(db.Model):
    """A worker's duty state and last known position (one row per worker)."""

    __tablename__ = "worker_presence"
    __table_args__ = (
        Index("ix_worker_presence_position", "position", postgresql_using="gist"),
    )

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    on_duty: Mapped[bool] = mapped_column(default=False, server_default=false())
    duty_changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                      server_default=func.now())
    position = mapped_column(Geometry("POINT", srid=4326, spatial_index=False))
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    position_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    user: Mapped[User] = relationship()


class Job(db.Model):
    """A timed piece of work for ``gridmgr worker``; (kind, key) makes scheduling idempotent."""

    __tablename__ = "dispatch_jobs"
    __table_args__ = (
        UniqueConstraint("kind", "key", name="uq_dispatch_jobs_kind_key"),
        CheckConstraint("state IN ('pending', 'done', 'skipped', 'failed')",
                        name="ck_dispatch_jobs_state"),
        Index("ix_dispatch_jobs_due", "run_at", postgresql_where=text("state = 'pending'")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(200))
    # No foreign key: a job for a case that is gone is skipped when it runs.
    case_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    run_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    state: Mapped[str] = mapped_column(String(12), default="pending", server_default="pending")
    payload: Mapped[dict] = mapped_column(JSONB, default=dict, server_default=text("'{}'"))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
