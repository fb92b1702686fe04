"""Extension objects, created once and bound to the app in ``create_app``."""

import flask_limiter
from flask import current_app, request
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_socketio import SocketIO
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
migrate = Migrate()


class Limiter(flask_limiter.Limiter):
    """Flask-Limiter, but a view marked with :meth:`counts_itself` skips its before-request
    check outright.

    That check runs on every request and resolves every limit that might apply before it finds
    a route exempt: on ``POST /api/v1/reports``, which counts its own limit, it took 7 % of a
    worker's CPU (docs/intake.md)."""

    def counts_itself(self, view):
        """Mark ``view`` (the function given to ``route``) as counting its own limit."""
        view.gridmgr_counts_own_limit = True
        return self.exempt(view)

    def _check_request_limit(self, callable_name=None, in_middleware=True) -> None:
        view = current_app.view_functions.get(request.endpoint)
        if getattr(view, "gridmgr_counts_own_limit", False):
            return
        super()._check_request_limit(callable_name=callable_name, in_middleware=in_middleware)


# Rate limits on public intake and login; storage is RATELIMIT_STORAGE_URI (Redis when set).
limiter = Limiter(key_func=get_remote_address, default_limits=[])

# The live channel; bound in ``create_app`` (threading mode, Redis message queue when set).
socketio = SocketIO()
