"""case lists: a category's cases and the cases with a clock, each walked newest first

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26 15:30:00

A list filtered by category or by clock colour walked the city's cases in id order, newest
first, and threw away the others: at 1,000,000 cases a closed case of one category in one
street is one in 1,750, and the newest 36,000 cases (fresh reports) have no clock yet; 13–80 ms
a page. ``ix_cases_category_id`` keeps a category's cases in id order (the list names the
category by its id, not by a join); ``ix_cases_clocked`` holds only the cases with a deadline,
the only ones with a clock, so fresh reports add nothing to it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_cases_category_id", "cases", ["category_id", "id"], unique=False)
    op.create_index("ix_cases_clocked", "cases", ["id"], unique=False,
                    postgresql_where=sa.text("deadline IS NOT NULL"))


def downgrade():
    op.drop_index("ix_cases_clocked", table_name="cases")
    op.drop_index("ix_cases_category_id", table_name="cases")
