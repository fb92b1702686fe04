"""step_requests: the answers of steps sent with an Idempotency-Key

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-12 09:00:00

A phone that queued a step offline may send it twice; the first answer is kept per user and
key, and the second request gets it again without taking the step a second time.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "step_requests",
        sa.Column("user_id", sa.Integer,
                  sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("case_id", sa.BigInteger, nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("answer", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
    )


def downgrade():
    op.drop_table("step_requests")
