"""The app in each of the cluster's gunicorn processes (gevent-websocket worker)."""

from __future__ import annotations

from flask import Flask


def create_served_app() -> Flask:
    """Built in gunicorn's gevent-websocket worker, which monkey-patched the process before
    loading it: psycopg2 is made cooperative, then the app built and its live relay started."""
    from gevent import monkey
    from psycogreen.gevent import patch_psycopg

    if not monkey.is_module_patched("socket"):
        raise RuntimeError("create_served_app runs in gunicorn's gevent-websocket worker")
    patch_psycopg()
    from gridmgr import create_app
    from gridmgr.serving import settle_memory, start_relay

    app = create_app()
    start_relay(app)
    settle_memory()
    return app
