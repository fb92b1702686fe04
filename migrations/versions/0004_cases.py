"""cases, reports, history and photos

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 10:35:00
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

# A case's history is evidence: the database itself refuses to change or remove it.
HISTORY_IS_APPEND_ONLY = """
CREATE FUNCTION refuse_history_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'case_history is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER case_history_append_only
    BEFORE UPDATE OR DELETE ON case_history
    FOR EACH ROW EXECUTE FUNCTION refuse_history_change();
"""


def upgrade():
    op.create_geospatial_table('cases',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('code', sa.String(length=20), nullable=False),
    sa.Column('city_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('source', sa.String(length=12), nullable=False),
    sa.Column('channel', sa.String(length=12), nullable=False),
    sa.Column('category_id', sa.Integer(), nullable=False),
    sa.Column('region_id', sa.Integer(), nullable=False),
    sa.Column('grid_code', sa.String(length=15), nullable=False),
    sa.Column('location', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('reporter_id', sa.Integer(), nullable=True),
    sa.Column('verified_by_id', sa.Integer(), nullable=True),
    sa.Column('department_id', sa.Integer(), nullable=True),
    sa.Column('worker_id', sa.Integer(), nullable=True),
    sa.Column('handler_id', sa.Integer(), nullable=True),
    sa.Column('deadlines', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'"), nullable=False),
    sa.Column('dispatched_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('clock_unit', sa.String(length=16), nullable=True),
    sa.Column('deadline', sa.DateTime(timezone=True), nullable=True),
    sa.Column('yellow_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('paused_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('paused_seconds', sa.Float(), server_default='0', nullable=False),
    sa.Column('shelved_from', sa.String(length=12), nullable=True),
    sa.Column('pending_request', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('accepted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('handled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('extension_count', sa.SmallInteger(), server_default='0', nullable=False),
    sa.Column('rework_count', sa.SmallInteger(), server_default='0', nullable=False),
    sa.Column('return_count', sa.SmallInteger(), server_default='0', nullable=False),
    sa.Column('reporter_count', sa.Integer(), server_default='1', nullable=False),
    sa.Column('rating', sa.SmallInteger(), nullable=True),
    sa.Column('rating_note', sa.Text(), nullable=True),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("source IN ('citizen', 'inspector')", name='ck_cases_source'),
    sa.CheckConstraint("state IN ('reported', 'verified', 'filed', 'cancelled', 'dispatched', 'accepted', 'handled', 'checked', 'closed', 'shelved')", name='ck_cases_state'),
    sa.CheckConstraint('rating IS NULL OR rating BETWEEN 1 AND 5', name='ck_cases_rating'),
    sa.ForeignKeyConstraint(['category_id'], ['categories.id'], ),
    sa.ForeignKeyConstraint(['city_id'], ['cities.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['department_id'], ['departments.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['handler_id'], ['users.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['region_id'], ['regions.id'], ),
    sa.ForeignKeyConstraint(['reporter_id'], ['users.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['verified_by_id'], ['users.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['worker_id'], ['users.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code')
    )
    op.create_geospatial_index('idx_cases_location', 'cases', ['location'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index('ix_cases_category_created', 'cases', ['category_id', 'created_at'], unique=False)
    op.create_index('ix_cases_city_state', 'cases', ['city_id', 'state', 'id'], unique=False)
    op.create_index('ix_cases_pending_request', 'cases', ['id'], unique=False,
                    postgresql_where=sa.text('pending_request IS NOT NULL'))
    op.create_index('ix_cases_to_file', 'cases', ['id'], unique=False, postgresql_where=sa.text(
        "state = 'verified' OR (state = 'reported' AND source = 'inspector')"))
    op.create_index(op.f('ix_cases_department_id'), 'cases', ['department_id'], unique=False)
    op.create_index('ix_cases_grid_code_pattern', 'cases', ['grid_code'], unique=False, postgresql_ops={'grid_code': 'text_pattern_ops'})
    op.create_index(op.f('ix_cases_region_id'), 'cases', ['region_id'], unique=False)
    op.create_index('ix_cases_updated', 'cases', ['updated_at', 'id'], unique=False)
    op.create_index(op.f('ix_cases_worker_id'), 'cases', ['worker_id'], unique=False)
    op.create_geospatial_table('case_history',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('case_id', sa.BigInteger(), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('actor_role', sa.String(length=20), nullable=True),
    sa.Column('action', sa.String(length=24), nullable=False),
    sa.Column('from_state', sa.String(length=12), nullable=True),
    sa.Column('to_state', sa.String(length=12), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('location', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry'), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('details', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'"), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_case_history_case_id'), 'case_history', ['case_id'], unique=False)
    op.create_geospatial_table('reports',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('reporter_key', sa.String(length=24), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('reporter_id', sa.Integer(), nullable=True),
    sa.Column('tracking_token_hash', sa.String(length=64), nullable=True),
    sa.Column('channel', sa.String(length=12), nullable=False),
    sa.Column('location', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.Column('coord_sys', sa.String(length=8), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('category_id', sa.Integer(), nullable=False),
    sa.Column('attributes', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'"), nullable=False),
    sa.Column('case_id', sa.BigInteger(), nullable=True),
    sa.Column('duplicate_of', sa.BigInteger(), nullable=True),
    sa.Column('contact_name', sa.String(length=200), nullable=True),
    sa.Column('contact_phone', sa.String(length=50), nullable=True),
    sa.Column('contact_email', sa.String(length=254), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("channel IN ('app', 'web', 'open311', 'hotline', 'patrol')", name='ck_reports_channel'),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['category_id'], ['categories.id'], ),
    sa.ForeignKeyConstraint(['duplicate_of'], ['cases.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['reporter_id'], ['users.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('reporter_key', 'client_id', name='uq_reports_reporter_client'),
    sa.UniqueConstraint('tracking_token_hash')
    )
    op.create_index(op.f('ix_reports_case_id'), 'reports', ['case_id'], unique=False)
    op.create_index(op.f('ix_reports_reporter_id'), 'reports', ['reporter_id'], unique=False)
    op.create_table('photos',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('mime', sa.String(length=20), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.BigInteger(), nullable=True),
    sa.Column('report_id', sa.BigInteger(), nullable=True),
    sa.Column('history_id', sa.BigInteger(), nullable=True),
    sa.Column('stage', sa.String(length=8), nullable=False),
    sa.Column('public', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('thumbnail_path', sa.String(length=200), nullable=True),
    sa.Column('exif_lon', sa.Float(), nullable=True),
    sa.Column('exif_lat', sa.Float(), nullable=True),
    sa.Column('uploaded_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("mime IN ('image/jpeg', 'image/png', 'image/heic')", name='ck_photos_mime'),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['history_id'], ['case_history.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['report_id'], ['reports.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['uploaded_by'], ['users.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_photos_case_id'), 'photos', ['case_id'], unique=False)
    op.create_index(op.f('ix_photos_sha256'), 'photos', ['sha256'], unique=False)
    op.execute(HISTORY_IS_APPEND_ONLY)


def downgrade():
    op.execute("DROP TRIGGER IF EXISTS case_history_append_only ON case_history")
    op.execute("DROP FUNCTION IF EXISTS refuse_history_change()")
    op.drop_index(op.f('ix_photos_sha256'), table_name='photos')
    op.drop_index(op.f('ix_photos_case_id'), table_name='photos')
    op.drop_table('photos')
    op.drop_index(op.f('ix_reports_reporter_id'), table_name='reports')
    op.drop_index(op.f('ix_reports_case_id'), table_name='reports')
    op.drop_geospatial_table('reports')
    op.drop_index(op.f('ix_case_history_case_id'), table_name='case_history')
    op.drop_geospatial_table('case_history')
    op.drop_index(op.f('ix_cases_worker_id'), table_name='cases')
    op.drop_index('ix_cases_updated', table_name='cases')
    op.drop_index(op.f('ix_cases_region_id'), table_name='cases')
    op.drop_index('ix_cases_grid_code_pattern', table_name='cases', postgresql_ops={'grid_code': 'text_pattern_ops'})
    op.drop_index(op.f('ix_cases_department_id'), table_name='cases')
    op.drop_index('ix_cases_to_file', table_name='cases', postgresql_where=sa.text(
        "state = 'verified' OR (state = 'reported' AND source = 'inspector')"))
    op.drop_index('ix_cases_pending_request', table_name='cases',
                  postgresql_where=sa.text('pending_request IS NOT NULL'))
    op.drop_index('ix_cases_city_state', table_name='cases')
    op.drop_index('ix_cases_category_created', table_name='cases')
    op.drop_geospatial_index('idx_cases_location', table_name='cases', postgresql_using='gist', column_name='location')
    op.drop_geospatial_table('cases')
