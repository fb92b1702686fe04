"""What a long-running server process does once its app is built."""

from __future__ import annotations

import gc

from flask import Flask


def settle_memory() -> None:
    """Put everything built so far (modules, the app, SQLAlchemy's metadata, the API document)
    out of the cyclic collector's reach.

    These objects live as long as the process; left in the collector's oldest generation, every
    full collection walks all of them, and on a busy server each such pass stalled every
    request and live event for 0.2 – 0.7 s (measured in ``bench/live.py``). Frozen, a full
    collection walks only what requests and connections made since. Objects are still freed
    by reference counting; only cycles among these permanent ones are never collected.
    """
    gc.collect()
    gc.freeze()


def start_relay(app: Flask) -> None:
    """Start this process's live relay before serving: it numbers what was written while no
    server ran (the map wall starts from the highest number), instead of doing so at the
    first client's connect. Connecting first starts the embedded database if that is the
    one configured."""
    from gridmgr.extensions import db
    from gridmgr.live.relay import relay

    with app.app_context(), db.engine.connect():
        pass
    relay.start(app)
