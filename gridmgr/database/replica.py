"""Reads that may lag a little, served by a streaming replica (``GRIDMGR_REPLICA_URL``).

The wall's feeds and tiles, the statistics, the monthly report and the open data read many
rows and write none; a replica a second behind the primary serves them as well and leaves the
primary to the reports and steps. When ``GRIDMGR_REPLICA_URL`` is set, the views named in
:data:`READ_ENDPOINTS` run their queries on a second engine connected there; every other view,
and anything flushed, stays on the primary. Unset, everything reads the primary.

How far behind a replica may be is the entry point's business (docs/deploy.md): the cluster's
replica entry point leads only to a replica within ``replica_max_lag`` of the primary, and to
the primary when there is none.
"""

from __future__ import annotations

from flask import Flask, current_app, g, has_app_context, request
from flask_sqlalchemy.session import Session
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from gridmgr.database.engine import database_url, ping_after_idle, tune_connection

# Views that only read, and may read data a moment old.
READ_ENDPOINTS = frozenset({
    "maps.boundaries_feed", "maps.case_feed", "maps.cases_feed", "maps.departments_feed",
    "maps.heat_feed", "maps.hotspots_feed", "maps.stats_feed", "maps.workers_feed",
    "maps.grid_tile", "mobile.region_tile",
    "stats.category_stats", "stats.department_stats", "stats.people_stats",
    "stats.region_stats",
    "opendata.cases_csv", "opendata.cases_geojson", "opendata.regions_geojson",
    "workbench.monthly_pdf",
})
_EXTENSION = "gridmgr_replica"


class ReadRoutingSession(Session):
    """Flask-SQLAlchemy's session, sending a read-only view's statements to the replica."""

    def get_bind(self, mapper=None, clause=None, bind=None, **kwargs):
        if bind is None and not self._flushing and has_app_context():
            replica = g.get(_EXTENSION)
            if replica is not None:
                return replica
        return super().get_bind(mapper=mapper, clause=clause, bind=bind, **kwargs)


def init_replica(app: Flask) -> None:
    """Connect the replica engine when ``GRIDMGR_REPLICA_URL`` is set, and route the
    read-only views to it."""
    url = app.config.get("GRIDMGR_REPLICA_URL")
    if not url:
        return
    engine = create_engine(database_url(url, app.config["GRIDMGR_HOME"]),
                           **app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}))
    tune_connection(engine)
    ping_after_idle(engine, app.config["GRIDMGR_DB_PING_AFTER_IDLE"])
    app.extensions[_EXTENSION] = engine
    app.before_request(_route_reads)


def replica_engine() -> Engine | None:
    """The current app's replica engine, None when reads stay on the primary."""
    return current_app.extensions.get(_EXTENSION)


def _route_reads() -> None:
    if request.endpoint in READ_ENDPOINTS:
        g.gridmgr_replica = current_app.extensions[_EXTENSION]
