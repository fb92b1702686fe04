"""case sync: a scope's changed cases found in one index

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-26 18:10:00

A phone's sync asks for the cases of its scope (a grid-code prefix) changed since a time. The
planner ANDed the grid-code index with the index on ``updated_at``, which after a busy hour
holds every case changed in it (175,000 on the benchmark database): 40 ms of a 50 ms sync.
The grid-code index now also holds ``updated_at`` and ``id``: the scope's entries are read
once and the time is checked in the index, 14 ms. It still serves every grid-code prefix
alone, so a new case enters no more indexes than before.
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade():
    op.drop_index("ix_cases_grid_code_pattern", table_name="cases")
    op.create_index("ix_cases_grid_code_updated", "cases", ["grid_code", "updated_at", "id"],
                    unique=False, postgresql_ops={"grid_code": "text_pattern_ops"})


def downgrade():
    op.drop_index("ix_cases_grid_code_updated", table_name="cases")
    op.create_index("ix_cases_grid_code_pattern", "cases", ["grid_code"], unique=False,
                    postgresql_ops={"grid_code": "text_pattern_ops"})
