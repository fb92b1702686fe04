"""duplicate check: a category's recent cases near a point found in one index

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-26 19:40:00

The duplicate check (at every report, and ``GET /cases/nearby``) wants the open cases of one
category reported within its time window near a point. The GiST index on ``location`` alone
gave every case in the radius's bounding box, of every category and year, each read from the
table before being dropped: a seventh of the database's time per report at 1,000,000 cases,
and more in a denser city with a full catalogue. The index now holds the category and the
report time beside the location (``btree_gist`` gives GiST the equality and range of plain
columns): the other categories and the old cases are passed over inside the index. It
replaces the index on ``location`` alone, which a query on location still uses through its
first column, so a new case enters no more indexes than before.
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    op.create_index("ix_cases_location_category_created", "cases",
                    ["location", "category_id", "created_at"], unique=False,
                    postgresql_using="gist")
    op.drop_index("idx_cases_location", table_name="cases", postgresql_using="gist")


def downgrade():
    op.create_index("idx_cases_location", "cases", ["location"], unique=False,
                    postgresql_using="gist")
    op.drop_index("ix_cases_location_category_created", table_name="cases",
                  postgresql_using="gist")
