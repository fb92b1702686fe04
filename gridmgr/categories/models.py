"""Categories of problems. Codes: ``C`` (component, 部件) or ``E`` (event, 事件), then the
2-digit major class and the 2-digit subclass, e.g. ``C0101`` 上水井盖, ``E0101`` 暴露垃圾.
Categories imported from Open311 keep their service code.

``limits`` maps each stage to an amount and a unit, e.g.
``{"dispatch": {"amount": 1, "unit": "working_hours"}, "handle": {"amount": 2,
"unit": "working_days"}}``; units are ``working_hours``, ``working_days``, ``urgent_hours``
and ``natural_days``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gridmgr.extensions import db
from gridmgr.people.models import Department

KINDS = ("component", "event")


class CategoryClass(db.Model):
    """A major class, e.g. ``C01`` 公用设施 or ``E05`` 街面秩序 (Open311: the service group)."""

    __tablename__ = "category_classes"
    __table_args__ = (CheckConstraint("kind IN ('component', 'event')", name="ck_class_kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[str] = mapped_column(String(12))
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))


class Category(db.Model):
    """A subclass that cases are filed under (an Open311 service)."""

    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("category_classes.id"), index=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    keywords: Mapped[list] = mapped_column(JSONB, default=list, server_default=text("'[]'"))
    department_id: Mapped[int | None] = mapped_column(
        ForeignKey("departments.id", ondelete="SET NULL"))
    duplicate_radius_m: Mapped[float] = mapped_column(Float, default=50, server_default="50")
    duplicate_window_hours: Mapped[float] = mapped_column(Float, default=72,
                                                          server_default="72")
    limits: Mapped[dict] = mapped_column(JSONB, default=dict, server_default=text("'{}'"))
    # Open311 service definition attributes (extra questions), as the specification shapes them.
    attributes: Mapped[list] = mapped_column(JSONB, default=list, server_default=text("'[]'"))
    auto_dispatch: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    active: Mapped[bool] = mapped_column(default=True, server_default=text("true"))

    category_class: Mapped[CategoryClass] = relationship()
    department: Mapped[Department | None] = relationship()


class CategoryDepartment(db.Model):
    """A region's own responsible department for a category (overrides the default)."""

    __tablename__ = "category_departments"
    __table_args__ = (UniqueConstraint("category_id", "region_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id", ondelete="CASCADE"))
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="CASCADE"))
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id", ondelete="CASCADE"))


class CategorySuggester(db.Model):
    """A trained category suggester (``gridmgr.categories.suggest``): the model learnt from a
    city's cases, kept so that every process uses it. (Rows without a city, trained on every
    city's cases together, are no longer read.)"""

    __tablename__ = "category_suggesters"

    id: Mapped[int] = mapped_column(primary_key=True)
    city_id: Mapped[int | None] = mapped_column(ForeignKey("cities.id", ondelete="CASCADE"),
                                                index=True)
    trained_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                 server_default=func.now())
    cases: Mapped[int] = mapped_column(Integer)
    model: Mapped[bytes] = mapped_column(LargeBinary)
    metrics: Mapped[dict] = mapped_column(JSONB, default=dict, server_default=text("'{}'"))
