"""``evaluation_facts``: the steps the indicators count, one narrow row each, kept by triggers.

One row per case (``kind = 'reported'``, at its ``created_at``) and one per counted step of
``case_history`` (verify, file, dispatch, return, check, rework, extend, shelve, handle,
self_handle, close), carrying what the step is counted by: the case's city, grid, category,
the department and person it counts for, and its deadline checks made against the case's
current deadlines. A failed check (a rework with ``passed: false``) is two rows: the
``rework``, for the handler it sends back, and a ``check``, for the inspector.

Migration 0007 defines ``evaluation_refresh_facts(ids)``, which rewrites the rows of the
given cases from ``cases`` and ``case_history``, and triggers that call it in the same
transaction as every ``case_history`` insert and every ``cases`` insert or update of a column
the rows depend on; so the rows are correct whatever code writes the cases.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from gridmgr.extensions import db


class EvaluationFact(db.Model):
    """A counted step (or a case's report) with its grouping keys and on-time flags."""

    __tablename__ = "evaluation_facts"
    __table_args__ = (
        Index("ix_evaluation_facts_city_at", "city_id", "at"),
        # the period's reports alone, for 漏报率 (tables.missed_rates)
        Index("ix_evaluation_facts_reported", "city_id", "at",
              postgresql_include=["grid_code", "valid_at", "source", "case_id"],
              postgresql_where=text("kind = 'reported'")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    case_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("cases.id", ondelete="CASCADE"),
                                         index=True)
    step_id: Mapped[int | None] = mapped_column(BigInteger)  # case_history.id; None: report
    kind: Mapped[str] = mapped_column(String(24))  # 'reported' or the step's action
    city_id: Mapped[int] = mapped_column(Integer)
    grid_code: Mapped[str] = mapped_column(String(15))
    category_id: Mapped[int | None] = mapped_column(Integer)
    # the step's department (a dispatch's or return's own), the case's for disposal steps
    department_id: Mapped[int | None] = mapped_column(Integer)
    # reporter; actor; for a rework the last handler; for handle, self_handle and close the
    # handler (close: the case's handler or worker, for a close whose handling is not in the
    # period)
    person_id: Mapped[int | None] = mapped_column(Integer)
    # close: the last handling's actor, its time; the close counts for them when it is in
    # the period
    handle_person_id: Mapped[int | None] = mapped_column(Integer)
    handle_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    on_time: Mapped[bool | None] = mapped_column(Boolean)  # stage deadline (handle: handling)
    closed_on_time: Mapped[bool | None] = mapped_column(Boolean)  # close, self_handle
    # handle, self_handle: the case's next handling; the last one in a period has none in it
    next_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # reported: the case's first file or self_handle (valid when before the period's end)
    valid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    source: Mapped[str | None] = mapped_column(String(12))  # reported: citizen, inspector, ...
