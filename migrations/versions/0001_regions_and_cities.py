"""regions and cities

Revision ID: 0001
Revises: 
Create Date: 2026-11-26 09:59:04.087280
"""

import geoalchemy2
import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.create_table('cities',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('slug')
    )
    op.create_geospatial_table('regions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('city_id', sa.Integer(), nullable=False),
    sa.Column('level', sa.String(length=12), nullable=False),
    sa.Column('code', sa.String(length=15), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('source_ref', sa.String(length=200), nullable=True),
    sa.Column('geom', Geometry(geometry_type='MULTIPOLYGON', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.Column('area_m2', sa.Float(), nullable=False),
    sa.Column('properties', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'"), nullable=False),
    sa.Column('generated', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("char_length(code) IN (6, 9, 12, 15) AND code ~ '^[0-9]+$'", name='ck_regions_code_digits'),
    sa.CheckConstraint("level IN ('district', 'street', 'community', 'grid')", name='ck_regions_level'),
    sa.ForeignKeyConstraint(['city_id'], ['cities.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['parent_id'], ['regions.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('city_id', 'code', name='uq_regions_city_code')
    )
    op.create_geospatial_index('idx_regions_geom', 'regions', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_regions_city_id'), 'regions', ['city_id'], unique=False)
    op.create_index(op.f('ix_regions_code'), 'regions', ['code'], unique=False)
    op.create_index('ix_regions_level_city', 'regions', ['level', 'city_id'], unique=False)
    op.create_index(op.f('ix_regions_parent_id'), 'regions', ['parent_id'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_regions_parent_id'), table_name='regions')
    op.drop_index('ix_regions_level_city', table_name='regions')
    op.drop_index(op.f('ix_regions_code'), table_name='regions')
    op.drop_index(op.f('ix_regions_city_id'), table_name='regions')
    op.drop_geospatial_index('idx_regions_geom', table_name='regions', postgresql_using='gist', column_name='geom')
    op.drop_geospatial_table('regions')
    op.drop_table('cities')
