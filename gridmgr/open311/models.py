"""Open311 API keys: clients that may file requests. Only a hash of each key is stored."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String, func
from sqlalchemy.orm import Mapped, mapped_column

from gridmgr.extensions import db


class ApiKey(db.Model):
    """A named key given to one client (an app, a city portal); revoked keys stay for the record."""

    __tablename__ = "open311_api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    # SHA-256 of the key: keys are 256-bit random strings, so a fast hash cannot be brute-forced.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None
