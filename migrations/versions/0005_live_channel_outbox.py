"""live channel outbox, rosters, positions and timed jobs

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 10:35:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('live_events',
    sa.Column('seq', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('event', sa.String(length=64), nullable=False),
    sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('rooms', postgresql.ARRAY(sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('seq')
    )
    op.create_index(op.f('ix_live_events_created_at'), 'live_events', ['created_at'], unique=False)
    # Every outbox insert wakes the relays (LISTEN gridmgr_live) when its transaction commits;
    # an empty payload lets PostgreSQL fold the notifications of one transaction into one.
    op.execute("""
        CREATE FUNCTION gridmgr_live_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('gridmgr_live', '');
            RETURN NULL;
        END $$;
    """)
    op.execute("""
        CREATE TRIGGER live_events_notify AFTER INSERT ON live_events
        FOR EACH STATEMENT EXECUTE FUNCTION gridmgr_live_notify();
    """)


def downgrade():
    op.execute("DROP TRIGGER IF EXISTS live_events_notify ON live_events")
    op.execute("DROP FUNCTION IF EXISTS gridmgr_live_notify()")
    op.drop_index(op.f('ix_live_events_created_at'), table_name='live_events')
    op.drop_table('live_events')
