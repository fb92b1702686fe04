"""reports: the SHA-256 of what a report says, so a used client_id answers only a resend

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-08 09:00:00

``(reporter_key, client_id)`` stays the unique key: a phone's resend finds its first report.
Every anonymous reporter shares one ``reporter_key``, so the key alone cannot tell a resend
from another person's report under the same ``client_id``; the hash of the report's content
can. Reports stored before this migration have none, and a resend of one is refused as
another report.
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("reports", sa.Column("content_hash", sa.String(64), nullable=True))


def downgrade():
    op.drop_column("reports", "content_hash")
