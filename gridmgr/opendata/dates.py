"""Dates as published documents write and read them: W3C datetimes (ISO 8601 with an offset),
as GeoReport v2 and the open-data filters use them."""

from __future__ import annotations

from datetime import UTC, datetime

from gridmgr.errors import DomainError


def w3c_datetime(value: datetime | None, tz) -> str | None:
    """A timezone-aware datetime as W3C/ISO 8601 with its offset, e.g. 2026-11-26T18:30:00+08:00."""
    if value is None:
        return None
    return value.astimezone(tz).isoformat(timespec="seconds")


def parse_w3c_datetime(text: str, name: str) -> datetime:
    """A W3C datetime (any offset, optional fractions; a date alone is its midnight) as aware
    UTC; a value without an offset is taken as UTC. Anything else is a 400 naming ``name``."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise DomainError("invalid_datetime",
                          f"{name} must be a W3C datetime such as 2026-11-26T09:30:00+08:00, "
                          f"not {text!r}.") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+14:00 is before the first representable instant
        raise DomainError("invalid_datetime",
                          f"{name} is outside the years 1 to 9999 once taken to UTC.") from None
