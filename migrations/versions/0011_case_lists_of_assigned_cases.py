"""case lists: a department's cases walked among the assigned cases only

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26 16:00:00

A department's list ("department_id = d OR worker_id = me", newest first) walked the city's
cases in id order; the newest are fresh reports that no one has been given yet (100,000 of them
on the benchmark database after the intake runs), 35 ms a page. ``ix_cases_assigned`` holds
only the cases given to a department or a worker; the list's condition implies its predicate,
so the planner walks it without a change to the query. Fresh reports add nothing to it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_cases_assigned", "cases", ["id"], unique=False, postgresql_where=sa.text(
        "department_id IS NOT NULL OR worker_id IS NOT NULL"))


def downgrade():
    op.drop_index("ix_cases_assigned", table_name="cases")
