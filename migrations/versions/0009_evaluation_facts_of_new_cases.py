"""evaluation facts: a new case's one 'reported' fact is written directly, not recomputed

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 13:20:00

Every report inserts a case; until now its statement trigger ran the general
``evaluation_refresh_facts`` (lock, delete, recompute from ``cases`` and ``case_history``),
about half of the database's work for a report. A case that has no counted step yet has
exactly one fact, its 'reported' row with no ``valid_at`` (that is the first 'file' or
'self_handle' step, a counted step), so the trigger now writes that row from the inserted
rows themselves, and keeps the general refresh for a case inserted together with counted
steps in one statement (its steps' own trigger may run first).
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

COUNTED = ("'verify', 'file', 'dispatch', 'return', 'check', 'rework', 'extend', 'shelve', "
           "'handle', 'self_handle', 'close'")

DIRECT = f"""
CREATE OR REPLACE FUNCTION evaluation_facts_after_case_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    with_steps bigint[] := ARRAY(
        SELECT DISTINCT h.case_id FROM new_rows n JOIN case_history h ON h.case_id = n.id
        WHERE h.action IN ({COUNTED}));
BEGIN
    PERFORM evaluation_refresh_facts(with_steps);
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

GENERAL = """
CREATE OR REPLACE FUNCTION evaluation_facts_after_case_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM evaluation_refresh_facts(ARRAY(SELECT id FROM new_rows));
    RETURN NULL;
END $$;
"""


def upgrade():
    op.execute(DIRECT)


def downgrade():
    op.execute(GENERAL)
