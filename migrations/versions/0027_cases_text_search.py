"""the lists' text search reads a trigram index

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07 23:45:00

The workbench's and the API's lists find words anywhere in a case's description
(``description ILIKE '%words%'``), which without an index reads every case of the scope. A GIN
index of the description's trigrams (pg_trgm, which extracts trigrams of Chinese text too in a
UTF-8 database) answers a search of three or more characters from the index; a shorter one is
still a scan, bounded by the list's other filters and its page size.

Built concurrently: a plain CREATE INDEX would stop every report and step (writes to
``cases``) until it finished, minutes at ten million cases.
"""

from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    with op.get_context().autocommit_block():
        # an interrupted build leaves an invalid index of this name behind
        op.drop_index("ix_cases_description_trgm", table_name="cases",
                      postgresql_concurrently=True, if_exists=True)
        op.create_index("ix_cases_description_trgm", "cases", ["description"], unique=False,
                        postgresql_using="gin", postgresql_ops={"description": "gin_trgm_ops"},
                        postgresql_concurrently=True)


def downgrade():
    with op.get_context().autocommit_block():
        op.drop_index("ix_cases_description_trgm", table_name="cases",
                      postgresql_concurrently=True)
