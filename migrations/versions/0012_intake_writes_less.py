"""intake: a new case enters three indexes fewer, and its triggers skip empty refreshes

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-26 18:00:00

A new report's case went into eleven indexes of ``cases``. Three of them are not needed:

- ``ix_cases_category_created`` served the duplicate check, which now starts from the location
  index; a category's lists walk ``ix_cases_category_id``.
- ``ix_cases_department_id`` and ``ix_cases_worker_id`` held every fresh report under NULL.
  They now hold only the cases given to someone; ``department_id = d`` and ``worker_id = w``
  still use them.

The evaluation-fact triggers called ``evaluation_refresh_facts`` with an empty list for every
new report (the function's own ``SET plan_cache_mode`` is saved and restored on each call);
they now call it only when there is a case to refresh.
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

COUNTED = ("'verify', 'file', 'dispatch', 'return', 'check', 'rework', 'extend', 'shelve', "
           "'handle', 'self_handle', 'close'")


def triggers(guarded: bool) -> str:
    """The two trigger functions; ``guarded``: refresh only when there is a case to refresh
    (the downgrade restores the unguarded calls, which behave the same)."""
    def refresh(ids: str) -> str:
        call = f"PERFORM evaluation_refresh_facts({ids});"
        return f"IF cardinality({ids}) > 0 THEN {call} END IF;" if guarded else call

    return f"""
CREATE OR REPLACE FUNCTION evaluation_facts_after_history() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    counted bigint[] := ARRAY(SELECT DISTINCT case_id FROM new_rows WHERE action IN ({COUNTED}));
BEGIN
    {refresh("counted")}
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION evaluation_facts_after_case_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    with_steps bigint[] := ARRAY(
        SELECT DISTINCT h.case_id FROM new_rows n JOIN case_history h ON h.case_id = n.id
        WHERE h.action IN ({COUNTED}));
BEGIN
    {refresh("with_steps")}
    INSERT INTO evaluation_facts (case_id, step_id, kind, city_id, grid_code, category_id,
                                  department_id, person_id, handle_person_id, handle_at, at,
                                  on_time, closed_on_time, next_at, valid_at, source)
    SELECT n.id, NULL, 'reported', n.city_id, n.grid_code, n.category_id, n.department_id,
           n.reporter_id, NULL, NULL, n.created_at, NULL, NULL, NULL, NULL, n.source
    FROM new_rows n
    WHERE n.id <> ALL(with_steps);
    RETURN NULL;
END $$;
"""


def upgrade():
    op.drop_index("ix_cases_category_created", table_name="cases")
    for column in ("department_id", "worker_id"):
        op.drop_index(f"ix_cases_{column}", table_name="cases")
        op.create_index(f"ix_cases_{column}", "cases", [column], unique=False,
                        postgresql_where=sa.text(f"{column} IS NOT NULL"))
    op.execute(triggers(guarded=True))


def downgrade():
    op.execute(triggers(guarded=False))
    for column in ("department_id", "worker_id"):
        op.drop_index(f"ix_cases_{column}", table_name="cases")
        op.create_index(f"ix_cases_{column}", "cases", [column], unique=False)
    op.create_index("ix_cases_category_created", "cases", ["category_id", "created_at"],
                    unique=False)
