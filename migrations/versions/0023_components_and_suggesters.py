"""components: the inventory of components (部件), their history, the component a case was
reported at; category_suggesters: trained category suggesters

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-14 09:00:00

Components carry a place of any shape (point, line, polygon) in WGS 84 with a GiST index:
the nearest lamps to a report and the bbox reads of the API and tiles use it.
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import JSONB

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "components",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("city_id", sa.Integer, sa.ForeignKey("cities.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("category_id", sa.Integer, sa.ForeignKey("categories.id"), nullable=False),
        sa.Column("department", sa.String(200)),
        sa.Column("department_id", sa.Integer,
                  sa.ForeignKey("departments.id", ondelete="SET NULL")),
        sa.Column("owner", sa.String(200)),
        sa.Column("owner_department_id", sa.Integer,
                  sa.ForeignKey("departments.id", ondelete="SET NULL")),
        sa.Column("maintainer", sa.String(200)),
        sa.Column("maintainer_department_id", sa.Integer,
                  sa.ForeignKey("departments.id", ondelete="SET NULL")),
        sa.Column("grid_code", sa.String(15)),
        sa.Column("state", sa.String(12), server_default="intact", nullable=False),
        sa.Column("geom", Geometry("GEOMETRY", srid=4326, spatial_index=False),
                  nullable=False),
        sa.Column("properties", JSONB, server_default=sa.text("'{}'"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
        sa.UniqueConstraint("city_id", "code", name="uq_components_city_code"),
        sa.CheckConstraint("state IN ('intact', 'damaged', 'missing', 'occupied')",
                           name="ck_components_state"),
        sa.CheckConstraint("code ~ '^[0-9]{16}$'", name="ck_components_code"),
    )
    op.create_index("ix_components_geom", "components", ["geom"], postgresql_using="gist")
    op.create_index("ix_components_category", "components", ["category_id", "id"])
    op.create_table(
        "component_history",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("component_id", sa.BigInteger,
                  sa.ForeignKey("components.id", ondelete="CASCADE"), nullable=False),
        sa.Column("action", sa.String(24), nullable=False),
        sa.Column("actor_id", sa.Integer, sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("case_id", sa.BigInteger),
        sa.Column("changes", JSONB, server_default=sa.text("'{}'"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
    )
    op.create_index("ix_component_history_component_id", "component_history",
                    ["component_id"])
    op.create_table(
        "case_components",
        sa.Column("case_id", sa.BigInteger, sa.ForeignKey("cases.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("component_id", sa.BigInteger,
                  sa.ForeignKey("components.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
    )
    op.create_index("ix_case_components_component_id", "case_components", ["component_id"])
    op.create_table(
        "category_suggesters",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("city_id", sa.Integer, sa.ForeignKey("cities.id", ondelete="CASCADE")),
        sa.Column("trained_at", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
        sa.Column("cases", sa.Integer, nullable=False),
        sa.Column("model", sa.LargeBinary, nullable=False),
        sa.Column("metrics", JSONB, server_default=sa.text("'{}'"), nullable=False),
    )
    op.create_index("ix_category_suggesters_city_id", "category_suggesters", ["city_id"])


def downgrade():
    op.drop_table("category_suggesters")
    op.drop_table("case_components")
    op.drop_table("component_history")
    op.drop_table("components")
