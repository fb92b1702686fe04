"""Reports, cases, their append-only history and their photos.

A report is what one reporter sent (idempotent on the reporter's ``client_id``); a case is the
problem the city works on. Several reports can join one case (duplicates). Every state change
of a case appends one :class:`CaseHistory` row; the database refuses to update or delete them.
"""

from __future__ import annotations

from datetime import datetime

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
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gridmgr.errors import NotFound, Sentence
from gridmgr.extensions import db

STATES = ("reported", "verified", "filed", "cancelled", "dispatched", "accepted", "handled",
          "checked", "closed", "shelved")
OPEN_STATES = ("reported", "verified", "filed", "dispatched", "accepted", "handled", "checked",
               "shelved")
CHANNELS = ("app", "web", "open311", "hotline", "patrol")
SOURCES = ("citizen", "inspector")


BIGINT_MAX = 2**63 - 1


def check_case_id(case_id: int) -> None:
    """404 ``case_not_found`` for an id no case can have (beyond PostgreSQL's bigint), before
    any statement runs: a prepared statement would fail on it (500), and a plain one would
    compare it as a numeric and read the whole table."""
    if not 0 < case_id <= BIGINT_MAX:
        raise NotFound(Sentence("No case has the id %(id)s.", id=case_id), code="case_not_found")


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


class Case(db.Model):
    """A problem the city works on, from filing to closing, with its clock."""

    __tablename__ = "cases"
    __table_args__ = (
        CheckConstraint(f"state IN ({_in(STATES)})", name="ck_cases_state"),
        CheckConstraint(f"source IN ({_in(SOURCES)})", name="ck_cases_source"),
        CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 5", name="ck_cases_rating"),
        # A scope (grid-code prefix) alone, or its cases changed since a time (the sync).
        Index("ix_cases_grid_code_updated", "grid_code", "updated_at", "id", postgresql_ops={
            "grid_code": "text_pattern_ops"}),
        Index("ix_cases_city_state", "city_id", "state", "id"),
        Index("ix_cases_pending_request", "id",
              postgresql_where=text("pending_request IS NOT NULL")),
        # The filing queue: verified citizen reports and inspectors' own reports.
        Index("ix_cases_to_file", "id", postgresql_where=text(
            "state = 'verified' OR (state = 'reported' AND source = 'inspector')")),
        # Lists: a category's cases and the cases with a clock, newest first.
        Index("ix_cases_category_id", "category_id", "id"),
        Index("ix_cases_clocked", "id", postgresql_where=text("deadline IS NOT NULL")),
        # A department's list: "department_id = … OR worker_id = …" implies this predicate, so
        # the planner walks the assigned cases only, past the fresh reports at the top.
        Index("ix_cases_assigned", "id", postgresql_where=text(
            "department_id IS NOT NULL OR worker_id IS NOT NULL")),
        Index("ix_cases_updated", "updated_at", "id"),
        # Public lists newest first (Open311 GET requests), walked backwards.
        Index("ix_cases_created", "created_at", "id"),
        # The lists' text search (description ILIKE '%words%'): trigrams, migration 0027.
        Index("ix_cases_description_trgm", "description", postgresql_using="gin",
              postgresql_ops={"description": "gin_trgm_ops"}),
        # Only cases given to someone: fresh reports (NULL) add nothing.
        Index("ix_cases_department_id", "department_id",
              postgresql_where=text("department_id IS NOT NULL")),
        Index("ix_cases_worker_id", "worker_id", postgresql_where=text("worker_id IS NOT NULL")),
        # Where (maps, nearby), and the duplicate check: a category's recent cases near a point
        # (btree_gist; migration 0014).
        Index("ix_cases_location_category_created", "location", "category_id", "created_at",
              postgresql_using="gist"),
        # The open cases alone (a few per cent of a city's years): the wall's tiles of open and
        # overdue cases by place, and the task lists by scope and state (migrations 0028, 0029).
        Index("ix_cases_open_location", "location", postgresql_using="gist",
              postgresql_where=text(f"state IN ({_in(OPEN_STATES)})")),
        Index("ix_cases_open_state_grid", "grid_code", "state",
              postgresql_ops={"grid_code": "text_pattern_ops"},
              postgresql_where=text(f"state IN ({_in(OPEN_STATES)})")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # yyyymmdd + 6-digit serial of the day, e.g. 20261126000042
    code: Mapped[str] = mapped_column(String(20), unique=True)
    city_id: Mapped[int] = mapped_column(ForeignKey("cities.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(12))
    source: Mapped[str] = mapped_column(String(12))
    channel: Mapped[str] = mapped_column(String(12))
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"))
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), index=True)
    grid_code: Mapped[str] = mapped_column(String(15))
    location = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    verified_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    department_id: Mapped[int | None] = mapped_column(
        ForeignKey("departments.id", ondelete="SET NULL"))
    worker_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    handler_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Stage deadlines as ISO strings: {"verify": ..., "file": ..., "dispatch": ..., ...}
    deadlines: Mapped[dict] = mapped_column(JSONB, default=dict, server_default=text("'{}'"))
    # The handling clock: started at dispatch, green → yellow (at yellow_at) → red (deadline).
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    clock_unit: Mapped[str | None] = mapped_column(String(16))
    deadline: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    yellow_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Shelving (挂账) pauses the clock; the paused time (in the unit's clock) moves the deadline.
    paused_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    paused_seconds: Mapped[float] = mapped_column(Float, default=0, server_default="0")
    shelved_from: Mapped[str | None] = mapped_column(String(12))
    # An extension or shelving asked for by the receiver, waiting for a duty chief.
    pending_request: Mapped[dict | None] = mapped_column(JSONB)
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    handled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    extension_count: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    rework_count: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    return_count: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    reporter_count: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    rating: Mapped[int | None] = mapped_column(SmallInteger)
    rating_note: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    category = relationship("Category")
    region = relationship("Region")
    history: Mapped[list[CaseHistory]] = relationship(
        back_populates="case", order_by="CaseHistory.id", viewonly=True)


class Report(db.Model):
    """One report from one reporter; ``client_id`` makes resending it harmless."""

    __tablename__ = "reports"
    __table_args__ = (
        UniqueConstraint("reporter_key", "client_id", name="uq_reports_reporter_client"),
        CheckConstraint(f"channel IN ({_in(CHANNELS)})", name="ck_reports_channel"),
        # Signed-in reporters' reports only: anonymous reports have none (migration 0017).
        Index("ix_reports_reporter_id", "reporter_id",
              postgresql_where=text("reporter_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # "u<user id>" for a signed-in reporter, "anon" for anonymous reports.
    reporter_key: Mapped[str] = mapped_column(String(24))
    client_id: Mapped[str] = mapped_column(String(64))
    # SHA-256 of what the report says: a used client_id answers only a resend of the same.
    content_hash: Mapped[str | None] = mapped_column(String(64))
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Anonymous reporters follow their report with a token; only its SHA-256 is kept.
    tracking_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    channel: Mapped[str] = mapped_column(String(12))
    location = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=False)
    coord_sys: Mapped[str] = mapped_column(String(8), default="wgs84")
    description: Mapped[str | None] = mapped_column(Text)
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"))
    attributes: Mapped[dict] = mapped_column(JSONB, default=dict, server_default=text("'{}'"))
    case_id: Mapped[int | None] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    duplicate_of: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="SET NULL"))
    # Private contact details: never in public output.
    contact_name: Mapped[str | None] = mapped_column(String(200))
    contact_phone: Mapped[str | None] = mapped_column(String(50))
    contact_email: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class CaseHistory(db.Model):
    """One step in a case's life; append-only (a trigger refuses UPDATE and DELETE)."""

    __tablename__ = "case_history"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor_role: Mapped[str | None] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(24))
    from_state: Mapped[str | None] = mapped_column(String(12))
    to_state: Mapped[str] = mapped_column(String(12))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    location = mapped_column(Geometry("POINT", srid=4326, spatial_index=False))
    note: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict] = mapped_column(JSONB, default=dict, server_default=text("'{}'"))

    case: Mapped[Case] = relationship(back_populates="history")


class Photo(db.Model):
    """A photo stored by content hash: the original (private) and a public copy without EXIF."""

    __tablename__ = "photos"
    __table_args__ = (
        CheckConstraint("mime IN ('image/jpeg', 'image/png', 'image/heic')", name="ck_photos_mime"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    mime: Mapped[str] = mapped_column(String(20))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(Integer)
    case_id: Mapped[int | None] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    report_id: Mapped[int | None] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"))
    history_id: Mapped[int | None] = mapped_column(
        ForeignKey("case_history.id", ondelete="CASCADE"))
    # before (the problem) or after (the handling)
    stage: Mapped[str] = mapped_column(String(8), default="before")
    public: Mapped[bool] = mapped_column(default=True, server_default=text("true"))
    thumbnail_path: Mapped[str | None] = mapped_column(String(200))
    exif_lon: Mapped[float | None] = mapped_column(Float)
    exif_lat: Mapped[float | None] = mapped_column(Float)
    uploaded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
