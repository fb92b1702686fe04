"""The schema comes only from migrations, and they agree with the models."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import current_app

from gridmgr.database.schema import include_object
from gridmgr.extensions import db


def test_migrations_match_the_models(app_ctx):
    migrate_config = current_app.extensions["migrate"]
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={
            "compare_type": True, "include_object": include_object})
        diff = compare_metadata(context, db.metadata)
    assert diff == [], f"models and migrations differ: {diff}"
    assert migrate_config.db is db


def test_postgis_is_installed(app_ctx):
    version = db.session.execute(db.text("SELECT postgis_version()")).scalar()
    assert version.startswith("3.")

