"""Choosing the database: ``DATABASE_URL`` when set, else the embedded cluster, on demand."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg2
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError

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


def ping_after_idle(engine: Engine, seconds: float) -> None:
    """Test a pooled connection before use only when it has been idle for ``seconds``.

    SQLAlchemy's ``pool_pre_ping`` costs a round trip on every checkout, about a tenth of a
    report's time at full load. A connection in steady use has just proved itself; one that
    sat idle may have been cut by a database restart or a firewall. A failed ping makes the
    pool replace the connection. A connection that breaks while in use still fails its
    request, which answers 503 (``gridmgr.errors``).
    """

    @event.listens_for(engine, "checkin")
    def _idle_from(dbapi_connection, connection_record):  # noqa: ARG001 - event signature
        connection_record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection, connection_record, proxy):  # noqa: ARG001
        if dbapi_connection.closed:
            raise DisconnectionError("the connection was closed")
        since = connection_record.info.get("idle_since")
        if since is None or time.monotonic() - since < seconds:
            return
        try:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            dbapi_connection.rollback()
        except psycopg2.Error as exc:
            raise DisconnectionError("the idle connection no longer answers") from exc


def end_sessions_despite_a_lost_server(app, db) -> None:
    """End each request's session even when its connection died with the database server.

    Flask-SQLAlchemy rolls the session back when the app context ends, after the answer was
    made: if the primary died in between (a failover), that rollback raises and a request
    that was answered would become a 500. The server rolled the transaction back itself; the
    pool forgets the broken connection and the answer stands.
    """
    from sqlalchemy.exc import DBAPIError

    @app.teardown_appcontext
    def _end_session(exc):  # noqa: ARG001 - teardown signature
        try:
            db.session.remove()
        except DBAPIError:
            try:
                db.session.remove()
            except DBAPIError:
                db.session.registry.clear()
