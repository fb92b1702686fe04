"""Users, their roles and region scopes, and the departments that handle cases."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, String, func, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gridmgr.extensions import db
from gridmgr.grids.models import Region

ROLES = ("citizen", "inspector", "operator", "duty_chief", "dispatcher", "department", "admin")
STAFF_ROLES = tuple(r for r in ROLES if r != "citizen")


class Department(db.Model):
    """A professional department or responsible unit (专业部门 / 责任单位)."""

    __tablename__ = "departments"

    id: Mapped[int] = mapped_column(primary_key=True)
    city_id: Mapped[int | None] = mapped_column(ForeignKey("cities.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200), unique=True)
    name_en: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class User(db.Model):
    """Anyone who signs in. Staff act only inside their region scope (None: the whole city)."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(
            "role IN ('citizen', 'inspector', 'operator', 'duty_chief', 'dispatcher', "
            "'department', 'admin')", name="ck_users_role"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(150), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20), index=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    # Private contact details: never in public output.
    phone: Mapped[str | None] = mapped_column(String(50))
    email: Mapped[str | None] = mapped_column(String(254))
    # The language of their messages (zh, en); None: the instance's (GRIDMGR_LANGUAGE).
    language: Mapped[str | None] = mapped_column(String(8))
    city_id: Mapped[int | None] = mapped_column(ForeignKey("cities.id", ondelete="SET NULL"))
    region_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id", ondelete="SET NULL"))
    department_id: Mapped[int | None] = mapped_column(
        ForeignKey("departments.id", ondelete="SET NULL"), index=True)
    is_active: Mapped[bool] = mapped_column(default=True, server_default=true())
    # Goes up when the password changes or the account is disabled: every token carries the
    # generation it was issued in, and older ones are refused (gridmgr.people.tokens).
    token_generation: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    region: Mapped[Region | None] = relationship()
    department: Mapped[Department | None] = relationship()


class RevokedToken(db.Model):
    """A token id (``jti``) that must no longer be accepted, kept until the token expires."""

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
