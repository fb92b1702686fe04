"""live events: a writer notifies the relays only when no other notification is on its way

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-26 20:10:00

PostgreSQL takes one lock, at commit, for every transaction that sent a NOTIFY, and holds it
until the commit's WAL flush, so that notifications are queued in commit order. Every write
that adds an outbox row notified, so such commits went one at a time, each with its own flush:
under load a third of the benchmark's database time was spent waiting on that lock. Now the
trigger notifies only if it gets a transaction-level advisory lock that no other writer
holds: a writer that finds another's notification on its way sends none. The relays, woken by
that one, look again 10, 50 and 200 ms after each wake-up that found events
(``gridmgr.live.relay``), which picks up the rows of the writers that stayed silent.
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# gridmgr.live.outbox.NOTIFY_LOCK ("noti"); the numbering lock of the relays is another key.
NOTIFY_LOCK = 0x6E6F7469


def upgrade():
    op.execute(f"""
        CREATE OR REPLACE FUNCTION gridmgr_live_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF pg_try_advisory_xact_lock({NOTIFY_LOCK}) THEN
                PERFORM pg_notify('gridmgr_live', '');
            END IF;
            RETURN NULL;
        END $$;
    """)


def downgrade():
    op.execute("""
        CREATE OR REPLACE FUNCTION gridmgr_live_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('gridmgr_live', '');
            RETURN NULL;
        END $$;
    """)
