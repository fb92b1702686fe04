"""live events: sequence numbers given by the relays after commit, not by writers under a lock

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 13:00:00

Until now a writer drew an event's ``seq`` at insert and held a transaction-level advisory lock
until its commit, so that numbers followed commit order; that lock serialised every commit that
published an event. Now a writer inserts the row with an ``id`` only; a relay numbers committed
rows (``seq``) under the lock in its own short transaction (``gridmgr.live.outbox.SEQUENCE_SQL``),
in the order they became visible. Existing rows keep their numbers; their ``id`` is their ``seq``.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("live_events", sa.Column("id", sa.BigInteger(), nullable=True))
    op.execute("UPDATE live_events SET id = seq")
    op.execute("CREATE SEQUENCE live_events_id_seq OWNED BY live_events.id")
    op.execute("SELECT setval('live_events_id_seq', "
               "(SELECT coalesce(max(seq), 0) + 1 FROM live_events), false)")
    op.execute("ALTER TABLE live_events ALTER COLUMN id SET DEFAULT nextval('live_events_id_seq')")
    op.alter_column("live_events", "id", nullable=False)
    op.drop_constraint("live_events_pkey", "live_events", type_="primary")
    op.create_primary_key("live_events_pkey", "live_events", ["id"])
    # seq keeps its sequence (live_events_seq_seq), now drawn by the relays' numbering only.
    op.execute("ALTER TABLE live_events ALTER COLUMN seq DROP DEFAULT")
    op.alter_column("live_events", "seq", nullable=True)
    op.create_index("ix_live_events_seq", "live_events", ["seq"], unique=True)
    op.create_index("ix_live_events_unsequenced", "live_events", ["id"], unique=False,
                    postgresql_where=sa.text("seq IS NULL"))


def downgrade():
    # Number what is still unnumbered, in id order, then make seq the key again.
    op.execute("""UPDATE live_events e SET seq = n.seq FROM (
                      SELECT id, nextval('live_events_seq_seq') AS seq FROM (
                          SELECT id FROM live_events WHERE seq IS NULL ORDER BY id) q) n
                  WHERE e.id = n.id""")
    op.drop_index("ix_live_events_unsequenced", table_name="live_events")
    op.drop_index("ix_live_events_seq", table_name="live_events")
    op.drop_constraint("live_events_pkey", "live_events", type_="primary")
    op.alter_column("live_events", "seq", nullable=False)
    op.execute("ALTER TABLE live_events ALTER COLUMN seq "
               "SET DEFAULT nextval('live_events_seq_seq')")
    op.create_primary_key("live_events_pkey", "live_events", ["seq"])
    op.drop_column("live_events", "id")
