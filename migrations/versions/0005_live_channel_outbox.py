"""live channel outbox, rosters, positions and timed jobs

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 10:35:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
