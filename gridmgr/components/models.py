"""Components (部件), as the CJ/T 214 component standard describes them.

A component's identification code has 16 digits: the county-level division code where it
stands (6), its class (2) and subclass (2) in the catalogue (``C0111`` street lamps: class
``01``, subclass ``11``) and a serial (6). Each has a name, a competent department (主管部门),
an owner (权属单位), a maintainer (养护单位), the unit grid it stands in, a state, and a place
that is a point, a line or a polygon. A problem reported at a component goes to its owner.
"""

from __future__ import annotations

from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gridmgr.extensions import db

STATES = ("intact", "damaged", "missing", "occupied")
CODE_LENGTH = 16


class Component(db.Model):
    """One component of the city's inventory."""

    __tablename__ = "components"
    __table_args__ = (
        UniqueConstraint("city_id", "code", name="uq_components_city_code"),
        CheckConstraint("state IN ('intact', 'damaged', 'missing', 'occupied')",
                        name="ck_components_state"),
        CheckConstraint("code ~ '^[0-9]{16}$'", name="ck_components_code"),
        # Lookups near a point by category (the nearest lamps) and the bbox reads.
        Index("ix_components_geom", "geom", postgresql_using="gist"),
        Index("ix_components_category", "category_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    city_id: Mapped[int] = mapped_column(ForeignKey("cities.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"))
    # Each party as the file names it, and the department of that name when there is one.
    department: Mapped[str | None] = mapped_column(String(200))
    department_id: Mapped[int | None] = mapped_column(
        ForeignKey("departments.id", ondelete="SET NULL"))
    owner: Mapped[str | None] = mapped_column(String(200))
    owner_department_id: Mapped[int | None] = mapped_column(
        ForeignKey("departments.id", ondelete="SET NULL"))
    maintainer: Mapped[str | None] = mapped_column(String(200))
    maintainer_department_id: Mapped[int | None] = mapped_column(
        ForeignKey("departments.id", ondelete="SET NULL"))
    grid_code: Mapped[str | None] = mapped_column(String(15))
    state: Mapped[str] = mapped_column(String(12), default="intact", server_default="intact")
    geom = mapped_column(Geometry("GEOMETRY", srid=4326, spatial_index=False), nullable=False)
    properties: Mapped[dict] = mapped_column(JSONB, default=dict, server_default=text("'{}'"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                 server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                 server_default=func.now())


class ComponentHistory(db.Model):
    """A change of a component: imported, edited (with the fields before and after), or its
    state set when a case at it closed."""

    __tablename__ = "component_history"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    component_id: Mapped[int] = mapped_column(
        ForeignKey("components.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(24))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    case_id: Mapped[int | None] = mapped_column(BigInteger)
    changes: Mapped[dict] = mapped_column(JSONB, default=dict, server_default=text("'{}'"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class CaseComponent(db.Model):
    """The component a case was reported at (one per case)."""

    __tablename__ = "case_components"

    case_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True)
    component_id: Mapped[int] = mapped_column(
        ForeignKey("components.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                 server_default=func.now())
