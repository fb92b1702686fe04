"""cities: the country whose public holidays and swapped working days the calendar follows

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 22:30:00

Holidays and swapped working days (调休) come from maintained libraries by country
(gridmgr.calendar.national); every existing city is in China.
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("cities", sa.Column("country", sa.String(2), nullable=False,
                                      server_default=sa.text("'CN'")))


def downgrade():
    op.drop_column("cities", "country")
