"""open311 api keys

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 10:35:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
