"""live channel outbox, rosters, positions and timed jobs

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 10:35:00
"""

import geoalchemy2
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
    op.create_table('roster_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('grid_id', sa.Integer(), nullable=False),
    sa.Column('starts', sa.Time(), nullable=True),
    sa.Column('ends', sa.Time(), nullable=True),
    sa.Column('weekdays', postgresql.ARRAY(sa.SmallInteger()), server_default=sa.text("'{1,2,3,4,5,6,7}'"), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['grid_id'], ['regions.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('user_id', 'grid_id', 'starts', 'ends', name='uq_roster_shift')
    )
    op.create_index(op.f('ix_roster_entries_grid_id'), 'roster_entries', ['grid_id'], unique=False)
    op.create_index(op.f('ix_roster_entries_user_id'), 'roster_entries', ['user_id'], unique=False)
    op.create_table('worker_presence',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('on_duty', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('duty_changed_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('position', geoalchemy2.types.Geometry(geometry_type='POINT', srid=4326, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry'), nullable=True),
    sa.Column('accuracy_m', sa.Float(), nullable=True),
    sa.Column('position_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id')
    )
    op.create_index('ix_worker_presence_position', 'worker_presence', ['position'], unique=False, postgresql_using='gist')
    op.create_table('dispatch_jobs',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('case_id', sa.BigInteger(), nullable=True),
    sa.Column('run_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('state', sa.String(length=12), server_default='pending', nullable=False),
    sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'"), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("state IN ('pending', 'done', 'skipped', 'failed')", name='ck_dispatch_jobs_state'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('kind', 'key', name='uq_dispatch_jobs_kind_key')
    )
    op.create_index(op.f('ix_dispatch_jobs_case_id'), 'dispatch_jobs', ['case_id'], unique=False)
    op.create_index('ix_dispatch_jobs_due', 'dispatch_jobs', ['run_at'], unique=False, postgresql_where=sa.text("state = 'pending'"))
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
    op.drop_index('ix_dispatch_jobs_due', table_name='dispatch_jobs', postgresql_where=sa.text("state = 'pending'"))
    op.drop_index(op.f('ix_dispatch_jobs_case_id'), table_name='dispatch_jobs')
    op.drop_table('dispatch_jobs')
    op.drop_index('ix_worker_presence_position', table_name='worker_presence', postgresql_using='gist')
    op.drop_table('worker_presence')
    op.drop_index(op.f('ix_roster_entries_user_id'), table_name='roster_entries')
    op.drop_index(op.f('ix_roster_entries_grid_id'), table_name='roster_entries')
    op.drop_table('roster_entries')
    op.execute("DROP TRIGGER IF EXISTS live_events_notify ON live_events")
    op.execute("DROP FUNCTION IF EXISTS gridmgr_live_notify()")
    op.drop_index(op.f('ix_live_events_created_at'), table_name='live_events')
    op.drop_table('live_events')
