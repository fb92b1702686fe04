"""users.language: the language a member of staff reads their messages in

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07 23:30:00

Null until the user chooses one (PATCH /api/v1/me): messages are then written in the
instance's language (GRIDMGR_LANGUAGE).
"""

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("users", sa.Column("language", sa.String(length=8), nullable=True))


def downgrade():
    op.drop_column("users", "language")
