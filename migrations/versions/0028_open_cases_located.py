"""the wall's open cases near a place read an index of the open cases alone

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-08 01:30:00

The wall's tiles count the open (and the overdue) cases of a tile's grids: ``location &&
box AND state IN (open states)``. The spatial index on ``cases`` holds every case, so a tile
read every case ever located in its box and dropped the closed ones: at ten million cases a
z14 tile visited about 125,000 cases to count about 3,000. This partial index holds the open
cases only, a few per cent of a city's year: a tile's cost is its open cases, whatever the
size of the table. Its predicate is ``gridmgr.cases.models.OPEN_STATES`` as it stood (the
planner uses the index only when a query's states imply it; a test holds the two together).

Built concurrently: a plain CREATE INDEX would stop every report and step (writes to
``cases``) until it finished, minutes at ten million cases.
"""

from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None

OPEN_STATES = ("reported", "verified", "filed", "dispatched", "accepted", "handled", "checked",
               "shelved")


def upgrade():
    with op.get_context().autocommit_block():
        # an interrupted build leaves an invalid index of this name behind
        op.drop_index("ix_cases_open_location", table_name="cases",
                      postgresql_concurrently=True, if_exists=True)
        op.execute("CREATE INDEX CONCURRENTLY ix_cases_open_location ON cases USING gist "
                   "(location) WHERE state IN ({})".format(
                       ", ".join(f"'{state}'" for state in OPEN_STATES)))


def downgrade():
    with op.get_context().autocommit_block():
        op.drop_index("ix_cases_open_location", table_name="cases",
                      postgresql_concurrently=True)
