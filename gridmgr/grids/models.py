"""The region hierarchy. One table holds every level; a unit grid is a region of level ``grid``.

Codes follow the Beijing local standard (DB11/T): 6-digit district (administrative division
code) + 3-digit street + 3-digit community + 3-digit grid serial. A level a city does not have
keeps ``000`` in its place, so a code's length tells its level: 6, 9, 12 or 15 digits.
"""

from __future__ import annotations

from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gridmgr.extensions import db

LEVELS = ("district", "street", "community", "grid")
CODE_LENGTH = {"district": 6, "street": 9, "community": 12, "grid": 15}
LEVEL_OF_CODE_LENGTH = {length: level for level, length in CODE_LENGTH.items()}


def ancestor_codes(code: str) -> list[str]:
    """The codes of a region and of each ancestor, district first: its prefixes of a level's
    length (``LEVEL_OF_CODE_LENGTH``)."""
    return [code[:n] for n in LEVEL_OF_CODE_LENGTH if n <= len(code)]


def ancestor_codes_sql(code: str) -> str:
    """SQL for :func:`ancestor_codes` of the text expression ``code``: a text[]."""
    lengths = ",".join(str(n) for n in LEVEL_OF_CODE_LENGTH)
    return (f"ARRAY(SELECT left({code}, n) FROM unnest('{{{lengths}}}'::int[]) n "
            f"WHERE n <= char_length({code}))")


class City(db.Model):
    """A city (or county-level unit) in the deployment; a provincial platform holds several."""

    __tablename__ = "cities"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    # ISO 3166 alpha-2: whose public holidays and swapped working days the calendar follows.
    country: Mapped[str] = mapped_column(String(2), default="CN", server_default=text("'CN'"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    regions: Mapped[list[Region]] = relationship(back_populates="city")


class Region(db.Model):
    """A district, street, community or unit grid, with its boundary in WGS 84."""

    __tablename__ = "regions"
    __table_args__ = (
        UniqueConstraint("city_id", "code", name="uq_regions_city_code"),
        CheckConstraint("level IN ('district', 'street', 'community', 'grid')",
                        name="ck_regions_level"),
        CheckConstraint(f"char_length(code) IN ({', '.join(map(str, LEVEL_OF_CODE_LENGTH))}) "
                        "AND code ~ '^[0-9]+$'", name="ck_regions_code_digits"),
        Index("ix_regions_level_city", "level", "city_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    city_id: Mapped[int] = mapped_column(ForeignKey("cities.id", ondelete="CASCADE"), index=True)
    level: Mapped[str] = mapped_column(String(12))
    code: Mapped[str] = mapped_column(String(15), index=True)
    name: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("regions.id", ondelete="CASCADE"), index=True)
    source_ref: Mapped[str | None] = mapped_column(String(200))
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=True), nullable=False)
    area_m2: Mapped[float] = mapped_column(Float)
    properties: Mapped[dict] = mapped_column(JSONB, default=dict, server_default=text("'{}'"))
    generated: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now())

    city: Mapped[City] = relationship(back_populates="regions")
    parent: Mapped[Region | None] = relationship(remote_side=[id], back_populates="children")
    children: Mapped[list[Region]] = relationship(back_populates="parent")

    def __repr__(self) -> str:
        return f"<Region {self.level} {self.code} {self.name}>"
