"""Choosing the database: ``DATABASE_URL`` when set, else the embedded cluster, on demand."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine

from gridmgr.database.embedded import EmbeddedCluster


def database_url(configured: str | None, home: Path) -> str:
    """The SQLAlchemy URL: the configured one (normalised to psycopg2) or the embedded one."""
    if not configured:
        return EmbeddedCluster(home).url
    if configured.startswith("postgres://"):
        configured = "postgresql://" + configured[len("postgres://"):]
    if configured.startswith("postgresql://"):
        configured = "postgresql+psycopg2://" + configured[len("postgresql://"):]
    return configured


def start_embedded_on_connect(engine: Engine, home: Path) -> None:
    """Start the embedded cluster the first time the engine opens a connection."""
    cluster = EmbeddedCluster(home)
    started = False

    @event.listens_for(engine, "do_connect")
    def _ensure_cluster(dialect, conn_rec, cargs, cparams):  # noqa: ARG001 - event signature
        nonlocal started
        if not started:
            cluster.start()
            started = True


def tune_connection(engine: Engine) -> None:
    """Session settings every gridmgr connection wants.

    Small spatial queries are slower with parallel plans, and the locate query runs best as a
    generic prepared plan.
    """

    @event.listens_for(engine, "connect")
    def _settings(dbapi_connection, connection_record):  # noqa: ARG001 - event signature
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET max_parallel_workers_per_gather = 0")
        dbapi_connection.commit()
