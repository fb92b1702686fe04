"""evaluation facts: the counted steps, one narrow row each, kept by triggers

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 11:10:00

``evaluation_refresh_facts(ids)`` rewrites the facts of the given cases from ``cases`` and
``case_history`` (see ``gridmgr/evaluation/models.py`` for what each column means and
``gridmgr/evaluation/indicators.py`` for how they are counted). Statement-level triggers call
it for the cases touched by each ``case_history`` INSERT and each ``cases`` INSERT or UPDATE of
a column the facts depend on, in the same transaction; the upgrade fills it for existing cases.
"""

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

COUNTED = ("'verify', 'file', 'dispatch', 'return', 'check', 'rework', 'extend', 'shelve', "
           "'handle', 'self_handle', 'close'")

REFRESH = f"""
-- a step refreshes one case: planning the statements afresh for each call would cost more
-- than running them, so their generic plans are kept (index lookups by case id: `= ANY(ids)`,
-- never `IN (SELECT unnest(ids))`, which a generic plan answers with a scan of every fact)
CREATE FUNCTION evaluation_refresh_facts(ids bigint[]) RETURNS void LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan AS $$
BEGIN
IF cardinality(ids) = 0 THEN
    RETURN;
END IF;
-- one refresh of a case at a time: a concurrent one waits, then sees these rows to delete
PERFORM 1 FROM cases WHERE id = ANY(ids) ORDER BY id FOR NO KEY UPDATE;
DELETE FROM evaluation_facts WHERE case_id = ANY(ids);
INSERT INTO evaluation_facts (case_id, step_id, kind, city_id, grid_code, category_id,
                              department_id, person_id, handle_person_id, handle_at, at,
                              on_time, closed_on_time, next_at, valid_at, source)
SELECT c.id, NULL, 'reported', c.city_id, c.grid_code, c.category_id, c.department_id,
       c.reporter_id, NULL, NULL, c.created_at, NULL, NULL, NULL,
       (SELECT min(v.at) FROM case_history v
        WHERE v.case_id = c.id AND v.action IN ('file', 'self_handle')),
       c.source
FROM cases c
WHERE c.id = ANY(ids)
UNION ALL
SELECT s.case_id, s.id, k.kind, c.city_id, c.grid_code, c.category_id,
       CASE WHEN k.kind IN ('handle', 'self_handle', 'close') THEN c.department_id
            ELSE COALESCE(NULLIF(s.details->>'department_id', '')::integer, c.department_id)
       END,
       CASE k.kind
           -- a rework counts for the person whose handling it sent back
           WHEN 'rework' THEN (SELECT p.actor_id FROM case_history p
                               WHERE p.case_id = s.case_id AND p.action = 'handle'
                                 AND p.at <= s.at
                               ORDER BY p.at DESC, p.id DESC LIMIT 1)
           WHEN 'handle' THEN COALESCE(s.actor_id, c.handler_id, c.worker_id)
           WHEN 'self_handle' THEN COALESCE(s.actor_id, c.handler_id, c.worker_id)
           WHEN 'close' THEN COALESCE(c.handler_id, c.worker_id)
           ELSE s.actor_id END,
       CASE WHEN k.kind = 'close' THEN COALESCE(lh.actor_id, c.handler_id, c.worker_id) END,
       CASE WHEN k.kind = 'close' THEN lh.at WHEN k.kind = 'self_handle' THEN s.at END,
       s.at,
       CASE WHEN k.kind IN ('handle', 'self_handle')
                THEN c.deadline IS NULL OR s.at <= c.deadline
            WHEN k.kind IN ('verify', 'file', 'check', 'rework')
                THEN (s.at <= (c.deadlines->>(CASE k.kind WHEN 'verify' THEN 'verify'
                                                            WHEN 'file' THEN 'file'
                                                            ELSE 'check' END))::timestamptz)
                     IS NOT FALSE END,
       CASE WHEN k.kind IN ('close', 'self_handle')
                THEN (c.deadline IS NULL OR c.handled_at <= c.deadline)
                     AND (s.at <= (c.deadlines->>'close')::timestamptz) IS NOT FALSE END,
       s.next_at,
       NULL,
       NULL
FROM (SELECT h.id, h.case_id, h.action, h.at, h.actor_id, h.details,
             CASE WHEN h.action IN ('handle', 'self_handle') THEN lead(h.at) OVER (
                 PARTITION BY h.case_id, h.action IN ('handle', 'self_handle')
                 ORDER BY h.at, h.id) END AS next_at
      FROM case_history h
      WHERE h.case_id = ANY(ids) AND h.action IN ({COUNTED})) s
-- a failed check (a rework with passed: false) is also a check, by the inspector
CROSS JOIN LATERAL unnest(CASE WHEN s.action = 'rework' AND s.details->>'passed' = 'false'
                              THEN ARRAY['rework', 'check'] ELSE ARRAY[s.action::text] END) k(kind)
JOIN cases c ON c.id = s.case_id
LEFT JOIN LATERAL (SELECT p.at, p.actor_id FROM case_history p
                   WHERE k.kind = 'close' AND p.case_id = s.case_id
                     AND p.action IN ('handle', 'self_handle')
                   ORDER BY p.at DESC, p.id DESC LIMIT 1) lh ON true;
END $$
"""

TRIGGERS = f"""
CREATE FUNCTION evaluation_facts_after_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM evaluation_refresh_facts(ARRAY(
        SELECT DISTINCT case_id FROM new_rows WHERE action IN ({COUNTED})));
    RETURN NULL;
END $$;
CREATE TRIGGER case_history_evaluation_facts AFTER INSERT ON case_history
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION evaluation_facts_after_history();

CREATE FUNCTION evaluation_facts_after_case_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM evaluation_refresh_facts(ARRAY(SELECT id FROM new_rows));
    RETURN NULL;
END $$;
CREATE TRIGGER cases_evaluation_facts_insert AFTER INSERT ON cases
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION evaluation_facts_after_case_insert();

CREATE FUNCTION evaluation_facts_after_case_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM evaluation_refresh_facts(ARRAY(
        SELECT n.id FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE (o.city_id, o.grid_code, o.category_id, o.department_id, o.reporter_id,
               o.handler_id, o.worker_id, o.deadline, o.deadlines, o.handled_at, o.created_at,
               o.source)
              IS DISTINCT FROM
              (n.city_id, n.grid_code, n.category_id, n.department_id, n.reporter_id,
               n.handler_id, n.worker_id, n.deadline, n.deadlines, n.handled_at,
               n.created_at, n.source)));
    RETURN NULL;
END $$;
CREATE TRIGGER cases_evaluation_facts_update AFTER UPDATE ON cases
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION evaluation_facts_after_case_update();
"""


def upgrade():
    op.create_table('evaluation_facts',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('case_id', sa.BigInteger(), nullable=False),
    sa.Column('step_id', sa.BigInteger(), nullable=True),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('city_id', sa.Integer(), nullable=False),
    sa.Column('grid_code', sa.String(length=15), nullable=False),
    sa.Column('category_id', sa.Integer(), nullable=True),
    sa.Column('department_id', sa.Integer(), nullable=True),
    sa.Column('person_id', sa.Integer(), nullable=True),
    sa.Column('handle_person_id', sa.Integer(), nullable=True),
    sa.Column('handle_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('on_time', sa.Boolean(), nullable=True),
    sa.Column('closed_on_time', sa.Boolean(), nullable=True),
    sa.Column('next_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('valid_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('source', sa.String(length=12), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_evaluation_facts_case_id'), 'evaluation_facts', ['case_id'],
                    unique=False)
    op.create_index('ix_evaluation_facts_city_at', 'evaluation_facts', ['city_id', 'at'],
                    unique=False)
    op.create_index('ix_evaluation_facts_reported', 'evaluation_facts', ['city_id', 'at'],
                    unique=False,
                    postgresql_include=['grid_code', 'valid_at', 'source', 'case_id'],
                    postgresql_where=sa.text("kind = 'reported'"))
    op.execute(REFRESH)
    op.execute(TRIGGERS)
    op.execute("SELECT evaluation_refresh_facts(ARRAY(SELECT id FROM cases))")


def downgrade():
    op.execute("DROP TRIGGER cases_evaluation_facts_update ON cases")
    op.execute("DROP TRIGGER cases_evaluation_facts_insert ON cases")
    op.execute("DROP TRIGGER case_history_evaluation_facts ON case_history")
    op.execute("DROP FUNCTION evaluation_facts_after_case_update()")
    op.execute("DROP FUNCTION evaluation_facts_after_case_insert()")
    op.execute("DROP FUNCTION evaluation_facts_after_history()")
    op.execute("DROP FUNCTION evaluation_refresh_facts(bigint[])")
    op.drop_index('ix_evaluation_facts_reported', table_name='evaluation_facts',
                  postgresql_where=sa.text("kind = 'reported'"))
    op.drop_index('ix_evaluation_facts_city_at', table_name='evaluation_facts')
    op.drop_index(op.f('ix_evaluation_facts_case_id'), table_name='evaluation_facts')
    op.drop_table('evaluation_facts')
