"""Live channel: the transactional outbox, its relay to Socket.IO and the ``/live`` namespace."""

from __future__ import annotations

import os

from flask import Flask

from gridmgr.live.outbox import LiveEvent, announce_access_change, publish

__all__ = ["ASYNC_MODES", "LiveEvent", "announce_access_change", "async_mode", "init_app",
           "publish"]

# ``threading`` (default: no monkey patching) or ``gevent`` (``gridmgr serve`` patches the
# process before anything else is imported; see docs/live.md).
ASYNC_MODES = ("threading", "gevent")


def async_mode(app: Flask | None = None) -> str:
    """The configured Socket.IO async mode: ``GRIDMGR_ASYNC_MODE`` (app config, then env)."""
    mode = (app.config.get("GRIDMGR_ASYNC_MODE") if app is not None else None) \
        or os.environ.get("GRIDMGR_ASYNC_MODE") or "threading"
    if mode not in ASYNC_MODES:
        raise ValueError(f"GRIDMGR_ASYNC_MODE must be one of {', '.join(ASYNC_MODES)}, "
                         f"not {mode!r}")
    if mode == "gevent" and not _gevent_patched():
        # Without the monkey patching (done only by the gevent entry point) psycopg2, the
        # relay and the request threads would block the one gevent hub: stay in threading.
        return "threading"
    return mode


def _gevent_patched() -> bool:
    try:
        from gevent import monkey
    except ImportError:
        return False
    return monkey.is_module_patched("socket") and monkey.is_module_patched("threading")


def init_app(app: Flask) -> None:
    """Bind Socket.IO (threading or gevent; Redis message queue when ``REDIS_URL`` is set)."""
    from gridmgr.extensions import socketio
    from gridmgr.live import channel
    from gridmgr.people.operations import access_changed

    url = app.config.get("REDIS_URL")
    channel_name = app.config["GRIDMGR_SOCKETIO_CHANNEL"]
    queue = {"message_queue": url, "channel": channel_name}
    if url and url.startswith("redis+sentinel://"):
        # Flask-SocketIO chooses its queue by the URL's scheme and takes this one for kombu;
        # python-socketio's RedisManager asks Sentinel for the master (docs/deploy.md).
        from socketio import RedisManager

        queue = {"client_manager": RedisManager(url, channel=channel_name)}
    socketio.init_app(app, async_mode=async_mode(app), **queue)
    channel.register(socketio)
    access_changed.connect(announce_access_change)
    _socketio_only_on_its_path(app)


def _socketio_only_on_its_path(app: Flask) -> None:
    """Send only Socket.IO's own path through its middleware; every other request goes
    straight to the app.

    Under gunicorn the middleware copies the environment and defines a class for every request,
    whatever its path: 3 % of an API worker's CPU on ``POST /api/v1/reports``."""
    middleware = app.wsgi_app
    path = middleware.engineio_path

    def dispatch(environ, start_response):
        if (environ.get("PATH_INFO") or "").startswith(path):
            return middleware(environ, start_response)
        return middleware.wsgi_app(environ, start_response)  # read now: debug may wrap it

    app.wsgi_app = dispatch
