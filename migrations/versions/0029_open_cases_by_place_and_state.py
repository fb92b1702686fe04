"""an inspector's tasks read the open cases of their area from one small index

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-08 02:00:00

An inspector's tasks (verify the citizens' reports, check the handled cases) are the cases
of one state whose grid code starts with the inspector's area. Read through the state's
index (every such case of the city) and the grid codes' index (every case of the area, of
any age) joined, they cost 150–290 ms at ten million cases. This partial index holds the
open cases alone, by grid code and state: a task list reads the area's open cases and
fetches those of its state. The grid code leads so that the city-wide task lists keep their
own indexes (state first, the planner misjudged "reported" and read 32,000 cases for 50).
Its predicate is ``gridmgr.cases.models.OPEN_STATES`` as it stood (a test holds the two
together).

Built concurrently: a plain CREATE INDEX would stop every report and step (writes to
``cases``) until it finished.
"""

from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None

OPEN_STATES = ("reported", "verified", "filed", "dispatched", "accepted", "handled", "checked",
               "shelved")


def upgrade():
    with op.get_context().autocommit_block():
        # an interrupted build leaves an invalid index of this name behind
        op.drop_index("ix_cases_open_state_grid", table_name="cases",
                      postgresql_concurrently=True, if_exists=True)
        op.execute("CREATE INDEX CONCURRENTLY ix_cases_open_state_grid ON cases "
                   "(grid_code text_pattern_ops, state) WHERE state IN ({})".format(
                       ", ".join(f"'{state}'" for state in OPEN_STATES)))


def downgrade():
    with op.get_context().autocommit_block():
        op.drop_index("ix_cases_open_state_grid", table_name="cases",
                      postgresql_concurrently=True)
