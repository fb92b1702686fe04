"""A city's working calendar: daily working periods, working weekdays, holidays and swapped
working days, and its time zone. Cities without a row use the defaults (08:00–12:00 and
14:00–18:00, Monday to Friday, Asia/Shanghai)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, String, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gridmgr.extensions import db


class WorkingCalendar(db.Model):
    __tablename__ = "working_calendars"

    id: Mapped[int] = mapped_column(primary_key=True)
    city_id: Mapped[int] = mapped_column(ForeignKey("cities.id", ondelete="CASCADE"),
                                         unique=True)
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    # [["08:00", "12:00"], ["14:00", "18:00"]]
    periods: Mapped[list] = mapped_column(
        JSONB, server_default=text("""'[["08:00", "12:00"], ["14:00", "18:00"]]'"""))
    # ISO weekdays that are working days (1 = Monday).
    weekdays: Mapped[list] = mapped_column(JSONB, server_default=text("'[1, 2, 3, 4, 5]'"))
    # Raised by the database with every change to the calendar or its days (migration 0016).
    version: Mapped[int] = mapped_column(BigInteger, server_default=text("1"))


class CalendarDay(db.Model):
    """An exception to the weekly pattern: a holiday, or a swapped working day (调休)."""

    __tablename__ = "calendar_days"
    __table_args__ = (
        UniqueConstraint("calendar_id", "day"),
        CheckConstraint("kind IN ('holiday', 'workday')", name="ck_calendar_day_kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    calendar_id: Mapped[int] = mapped_column(
        ForeignKey("working_calendars.id", ondelete="CASCADE"), index=True)
    day: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(10))
    name: Mapped[str | None] = mapped_column(String(100))
