"""intake: a new report enters three index entries fewer, none of which any query reads

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-26 23:55:00

A report written as a new case put 22 entries into b-tree indexes (``pg_walinspect``: 22
``Btree/INSERT_LEAF`` records per report). No query ever reads three of them:

- ``ix_live_events_seq`` held every new outbox row under NULL: a writer inserts the row without
  a number, and a relay numbers it after the commit. Every query on ``seq`` compares it
  (``seq > n``, ``seq <= n``, ``max(seq)``), so a partial index of the numbered rows serves them
  all and still keeps the numbers unique.
- ``ix_reports_reporter_id`` held every anonymous report under NULL. ``reporter_id = n`` (a
  citizen's own reports, and the ``ON DELETE SET NULL`` of a removed user) is served the same
  by a partial index of the signed-in reporters' reports.
- ``ix_live_events_created_at`` serves only the prune of old events
  (``gridmgr.dispatch.jobs.prune_outbox``). Rows are written in the order of their time, so a
  BRIN index (one summary per 128 pages) finds the old ones as well. An insert costs it almost
  nothing; each full range of pages is summarised by autovacuum (``autosummarize``), and a
  range not yet summarised is read whole, so no old row is missed.
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade():
    op.drop_index("ix_live_events_seq", table_name="live_events")
    op.create_index("ix_live_events_seq", "live_events", ["seq"], unique=True,
                    postgresql_where=sa.text("seq IS NOT NULL"))
    op.drop_index("ix_reports_reporter_id", table_name="reports")
    op.create_index("ix_reports_reporter_id", "reports", ["reporter_id"],
                    postgresql_where=sa.text("reporter_id IS NOT NULL"))
    op.drop_index("ix_live_events_created_at", table_name="live_events")
    op.create_index("ix_live_events_created_at", "live_events", ["created_at"],
                    postgresql_using="brin", postgresql_with={"autosummarize": "on"})


def downgrade():
    op.drop_index("ix_live_events_created_at", table_name="live_events")
    op.create_index("ix_live_events_created_at", "live_events", ["created_at"])
    op.drop_index("ix_reports_reporter_id", table_name="reports")
    op.create_index("ix_reports_reporter_id", "reports", ["reporter_id"])
    op.drop_index("ix_live_events_seq", table_name="live_events")
    op.create_index("ix_live_events_seq", "live_events", ["seq"], unique=True)
