"""What a long-running server process does once its app is built."""

from __future__ import annotations

import gc
import time

from flask import Flask

# How often a full collection walks everything again, frozen objects included (see below).
FULL_PASS_SECONDS = 3600.0


def settle_memory() -> None:
    """Put everything built so far (modules, the app, SQLAlchemy's metadata, the API document)
    out of the cyclic collector's reach, and from then on what survives each full collection.

    These objects live as long as the process; left in the collector's oldest generation, every
    full collection walks all of them, and on a busy server each such pass stalled every
    request and live event for 0.2 – 0.7 s (measured in ``bench/live.py``). Frozen, a full
    collection walks only what requests and connections made since. Objects are still freed
    by reference counting; only cycles among frozen ones wait for the hourly full pass.
    """
    gc.collect()
    gc.freeze()
    if _freeze_survivors not in gc.callbacks:
        gc.callbacks.append(_freeze_survivors)


_last_full_pass = time.monotonic()


def _freeze_survivors(phase: str, info: dict) -> None:
    """After a full collection, freeze what it kept: a connected phone's objects (about a
    hundred per WebSocket) live as long as the connection, and with 5,000 connected each full
    pass over them took 0.2 – 0.4 s, during which no event went out. Once an hour, unfreeze
    instead, so that the next full pass also frees cycles among objects frozen earlier."""
    global _last_full_pass
    if phase != "stop" or info["generation"] != 2:
        return
    now = time.monotonic()
    if now - _last_full_pass >= FULL_PASS_SECONDS:
        _last_full_pass = now
        gc.unfreeze()
    else:
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
