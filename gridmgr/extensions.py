"""Extension objects, created once and bound to the app in ``create_app``."""

import functools

import flask_compress
import flask_limiter
from flask import current_app, request
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_socketio import SocketIO
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase

from gridmgr.database.replica import ReadRoutingSession


class Base(DeclarativeBase):
    pass


# Read-only views may read a replica (GRIDMGR_REPLICA_URL; gridmgr.database.replica).
db = SQLAlchemy(model_class=Base, session_options={"class_": ReadRoutingSession})
migrate = Migrate()


def _view_counts_itself() -> bool:
    view = current_app.view_functions.get(request.endpoint)
    return getattr(view, "gridmgr_counts_own_limit", False)


class Limiter(flask_limiter.Limiter):
    """Flask-Limiter, but a view marked with :meth:`counts_itself` skips its hooks outright.

    The before-request check runs on every request and resolves every limit that might apply
    before it finds a route exempt: on ``POST /api/v1/reports``, which counts its own limit, it
    took 7 % of a worker's CPU (docs/intake.md). The after-request and teardown hooks then
    build and reset a per-request context to report limits such a view does not have."""

    def init_app(self, app) -> None:
        super().init_app(app)
        for hooks in (app.after_request_funcs.get(None, []),
                      app.teardown_request_funcs.get(None, [])):
            for n, hook in enumerate(hooks):
                if getattr(hook, "__self__", None) is self or self in getattr(hook, "args", ()):
                    hooks[n] = _unless_view_counts_itself(hook)

    def counts_itself(self, view):
        """Mark ``view`` (the function given to ``route``) as counting its own limit."""
        view.gridmgr_counts_own_limit = True
        return self.exempt(view)

    def _check_request_limit(self, callable_name=None, in_middleware=True) -> None:
        if _view_counts_itself():
            return
        super()._check_request_limit(callable_name=callable_name, in_middleware=in_middleware)


def _unless_view_counts_itself(hook):
    """``hook`` (after-request or teardown: one argument, given back) skipped for a view that
    counts its own limit."""

    @functools.wraps(hook)
    def limiter_hook(argument):
        return argument if _view_counts_itself() else hook(argument)

    return limiter_hook


# Rate limits on public intake and login; storage is RATELIMIT_STORAGE_URI (Redis when set).
limiter = Limiter(key_func=get_remote_address, default_limits=[])

# The live channel; bound in ``create_app`` (threading mode, Redis message queue when set).
socketio = SocketIO()


class Compress(flask_compress.Compress):
    """Flask-Compress for the kinds of answer in ``COMPRESS_MIMETYPES``; every other answer
    (tiles, photos) passes untouched, without even a ``Vary`` header."""

    def after_request(self, response):
        if response is None or response.mimetype not in self.compress_mimetypes_set:
            return response
        return super().after_request(response)


# Pages, scripts, styles and large JSON leave compressed (zstd, brotli or gzip, as the client
# accepts).
compress = Compress()
