"""working calendars: a version number kept by the database, instead of a hash per statement

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-26 22:10:00

A statement that computes a deadline checks that the city's working calendar is the one the
process has cached (``gridmgr.calendar.deadlines.calendar_version_sql``). It hashed the
calendar's row and all its special days on every run: about 70 µs of PostgreSQL CPU on every
report, whose whole statement costs about 1.15 ms. Now ``working_calendars.version`` goes up by
one with every change to the calendar or to one of its days (triggers, so that an edit made
with SQL counts as well), and the statement reads it with the city's time zone.
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("""
        ALTER TABLE working_calendars ADD COLUMN version bigint NOT NULL DEFAULT 1;

        CREATE FUNCTION working_calendar_new_version() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.version := OLD.version + 1;
            RETURN NEW;
        END $$;
        CREATE TRIGGER working_calendars_version BEFORE UPDATE ON working_calendars
            FOR EACH ROW EXECUTE FUNCTION working_calendar_new_version();

        CREATE FUNCTION calendar_day_new_version() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP <> 'INSERT' THEN
                UPDATE working_calendars SET version = version + 1 WHERE id = OLD.calendar_id;
            END IF;
            IF TG_OP <> 'DELETE' THEN
                UPDATE working_calendars SET version = version + 1 WHERE id = NEW.calendar_id;
            END IF;
            RETURN NULL;
        END $$;
        CREATE TRIGGER calendar_days_version AFTER INSERT OR UPDATE OR DELETE ON calendar_days
            FOR EACH ROW EXECUTE FUNCTION calendar_day_new_version();

        CREATE FUNCTION calendar_days_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE working_calendars SET version = version + 1;
            RETURN NULL;
        END $$;
        CREATE TRIGGER calendar_days_truncate AFTER TRUNCATE ON calendar_days
            FOR EACH STATEMENT EXECUTE FUNCTION calendar_days_truncated();
    """)


def downgrade():
    op.execute("""
        DROP TRIGGER calendar_days_truncate ON calendar_days;
        DROP FUNCTION calendar_days_truncated();
        DROP TRIGGER calendar_days_version ON calendar_days;
        DROP FUNCTION calendar_day_new_version();
        DROP TRIGGER working_calendars_version ON working_calendars;
        DROP FUNCTION working_calendar_new_version();
        ALTER TABLE working_calendars DROP COLUMN version;
    """)
