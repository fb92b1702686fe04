"""Steps sent again by a phone: an ``Idempotency-Key`` makes a step applied once.

A phone that queued a step offline sends it with a key it made; when the answer is lost on the
way, it sends the same key again. The first answer is kept per user and key; a later request
with the key gets that answer again and changes nothing. The key belongs to one step of one
case: used for another, it is refused (422 ``idempotency_key_reused``).
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, String, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gridmgr.errors import InvalidInput
from gridmgr.extensions import db

KEY_PATTERN = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
# How long a copy refused by its twin's step waits for the twin's answer, and how often it looks.
ANSWER_WAIT_S = 2.0
ANSWER_POLL_S = 0.05


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


def answer_kept_meanwhile(user_id: int, key: str, case_id: int, action: str,
                          wait_s: float = ANSWER_WAIT_S) -> dict | None:
    """The answer a copy of this step sent at the same moment got, once it is kept.

    A copy that arrives while the first is being taken finds no earlier answer, then finds the
    case already moved (409). The first copy keeps its answer right after its step commits, so
    the refused copy looks for it a little while before giving its refusal: concurrency answers
    as a resend does, on the one connection of the request."""
    deadline = time.monotonic() + wait_s
    while True:
        db.session.rollback()  # a fresh snapshot: what the other copy committed
        answer = earlier_answer(user_id, key, case_id, action)
        if answer is not None or time.monotonic() >= deadline:
            return answer
        time.sleep(ANSWER_POLL_S)


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
