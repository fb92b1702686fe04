"""Steps sent again by a phone: an ``Idempotency-Key`` makes a step applied once.

A phone that queued a step offline sends it with a key it made; when the answer is lost on the
way, it sends the same key again. The first answer is kept per user and key; a later request
with the key gets that answer again and changes nothing. The key belongs to one step of one
case: used for another, it is refused (422 ``idempotency_key_reused``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, String, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gridmgr.errors import InvalidInput
from gridmgr.extensions import db

KEY_PATTERN = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class StepRequest(db.Model):
    """The answer a step got, kept under the key its sender chose."""

    __tablename__ = "step_requests"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    case_id: Mapped[int] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(32))
    answer: Mapped[dict] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                 server_default=func.now())


def check_key(key: str) -> str:
    """The key, or 422 ``bad_idempotency_key``."""
    if not KEY_PATTERN.match(key):
        raise InvalidInput("An Idempotency-Key is 1 to 128 letters, digits and . _ : -.",
                           code="bad_idempotency_key")
    return key


@contextmanager
def claimed(user_id: int, key: str) -> Iterator[None]:
    """Hold this user's key while its step is looked up, taken and its answer kept.

    A copy sent at the same moment on another connection waits here until the first copy's
    answer is kept, then finds it: concurrency answers as a resend does. The lock lives on a
    connection of its own, since the step commits (and gives back its connection) midway.
    """
    with db.engine.connect() as lock:
        lock.execute(text("SELECT pg_advisory_lock(:u, hashtext(:k))"), {"u": user_id, "k": key})
        try:
            yield
        finally:
            lock.execute(text("SELECT pg_advisory_unlock(:u, hashtext(:k))"),
                         {"u": user_id, "k": key})
            lock.commit()


def earlier_answer(user_id: int, key: str, case_id: int, action: str) -> dict | None:
    """The answer this user's step with ``key`` already got, or None when it is new."""
    row = db.session.execute(text(
        "SELECT case_id, action, answer FROM step_requests WHERE user_id = :u AND key = :k"),
        {"u": user_id, "k": key}).one_or_none()
    if row is None:
        return None
    if (row.case_id, row.action) != (case_id, action):
        raise InvalidInput("This Idempotency-Key was used for another step; make a new one.",
                           code="idempotency_key_reused", case_id=row.case_id,
                           action=row.action)
    return row.answer


def keep_answer(user_id: int, key: str, case_id: int, action: str, answer: dict) -> None:
    """Keep the answer of the step just taken under its key."""
    db.session.execute(text("""
        INSERT INTO step_requests (user_id, key, case_id, action, answer)
        VALUES (:u, :k, :c, :a, CAST(:answer AS jsonb)) ON CONFLICT DO NOTHING"""),
        {"u": user_id, "k": key, "c": case_id, "a": action,
         "answer": json.dumps(answer, default=str)})
    db.session.commit()
