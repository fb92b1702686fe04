"""notifications and webhooks: messages and signed deliveries made from the outbox

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-10 09:00:00

``notifications`` holds every message (e-mail, SMS, push) and webhook delivery the outbox
called for, written by the worker in the same transaction that moves its cursor
(``notify_cursor``) past the outbox rows it read: each event fans out exactly once, and a
delivery is retried from its row until it is sent, given up or acknowledged. The cursor starts
at the outbox's current end: what happened before is not told again.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "notify_cursor",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
    )
    op.execute("INSERT INTO notify_cursor (name, seq) "
               "SELECT 'outbox', coalesce(max(seq), 0) FROM live_events")
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("events", ARRAY(sa.Text), nullable=False),
        sa.Column("department_id", sa.Integer,
                  sa.ForeignKey("departments.id", ondelete="CASCADE")),
        sa.Column("region_code", sa.String(15)),
        sa.Column("state", sa.String(8), nullable=False, server_default="active"),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        sa.Column("paused_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("state IN ('active', 'paused')", name="ck_webhook_endpoints_state"),
        sa.CheckConstraint("department_id IS NULL OR region_code IS NULL",
                           name="ck_webhook_endpoints_one_scope"),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("address", sa.Text, nullable=False),
        sa.Column("case_id", sa.BigInteger, sa.ForeignKey("cases.id", ondelete="CASCADE")),
        sa.Column("endpoint_id", sa.Integer,
                  sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE")),
        sa.Column("event_seq", sa.BigInteger),
        sa.Column("language", sa.String(8), nullable=False, server_default="zh"),
        sa.Column("subject", sa.Text),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("links", JSONB, nullable=False, server_default=sa.text("'{}'")),
        sa.Column("state", sa.String(8), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.Column("give_up_at", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("channel IN ('email', 'sms', 'push', 'webhook')",
                           name="ck_notifications_channel"),
        sa.CheckConstraint("state IN ('pending', 'sent', 'failed')",
                           name="ck_notifications_state"),
    )
    # What the delivery loop claims: due messages; an endpoint's deliveries in sequence order.
    op.create_index("ix_notifications_due", "notifications", ["next_at", "id"],
                    postgresql_where=sa.text("state = 'pending' AND endpoint_id IS NULL"))
    op.create_index("ix_notifications_endpoint_pending", "notifications",
                    ["endpoint_id", "event_seq", "id"],
                    postgresql_where=sa.text("state = 'pending' AND endpoint_id IS NOT NULL"))
    op.create_index("ix_notifications_failed", "notifications", ["id"],
                    postgresql_where=sa.text("state = 'failed'"))
    op.create_index("ix_notifications_case_id", "notifications", ["case_id"])
    op.create_table(
        "notify_optouts",
        sa.Column("case_id", sa.BigInteger, sa.ForeignKey("cases.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("address", sa.Text, primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    )
    op.create_table(
        "push_subscriptions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("endpoint", sa.Text, nullable=False, unique=True),
        sa.Column("p256dh", sa.Text, nullable=False),
        sa.Column("auth", sa.Text, nullable=False),
        sa.Column("language", sa.String(8), nullable=False, server_default="zh"),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    )


def downgrade():
    op.drop_table("push_subscriptions")
    op.drop_table("notify_optouts")
    op.drop_table("notifications")
    op.drop_table("webhook_endpoints")
    op.drop_table("notify_cursor")
