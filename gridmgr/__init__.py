"""gridmgr: grid-based urban management (网格化城市管理)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from flask import Flask, Response
from werkzeug.middleware.proxy_fix import ProxyFix

from gridmgr import live
from gridmgr.config import Config, gridmgr_home
from gridmgr.database.engine import (
    database_url,
    end_sessions_despite_a_lost_server,
    ping_after_idle,
    start_embedded_on_connect,
    tune_connection,
)
from gridmgr.database.replica import init_replica
from gridmgr.extensions import compress, db, limiter, migrate
from maps.session import SealedCookieSessions

# On every answer, pages and API alike: no MIME sniffing, no framing by any site (old browsers
# read X-Frame-Options, new ones the CSP directive), no full URL sent to another site. No view
# sets these, so they are appended, not replaced (half the cost, on every report of intake).
SECURITY_HEADERS = [
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
]
NO_FRAMING = "frame-ancestors 'none'"


class CookieSessionsOnDemand(SealedCookieSessions):
    """Sealed cookie sessions (the map wall's sign-in and language), opened only when the
    request brings the cookie.

    Flask builds the cookie's signer before it looks for the cookie, on every request: 5 % of
    an API worker's CPU on ``POST /api/v1/reports``, whose callers send no cookie."""

    def open_session(self, app, request):
        if app.secret_key and self.get_cookie_name(app) not in request.cookies:
            return self.session_class()
        return super().open_session(app, request)


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app: defaults, environment, instance config, extensions, blueprints."""
    home = Path((test_config or {}).get("GRIDMGR_HOME") or gridmgr_home())
    home.mkdir(parents=True, exist_ok=True)
    app = Flask(__name__, instance_path=str(home), instance_relative_config=True)
    app.session_interface = CookieSessionsOnDemand()
    app.config.from_object(Config)
    app.config.from_pyfile("config.py", silent=True)
    if test_config:
        app.config.from_mapping(test_config)
    app.config["GRIDMGR_HOME"] = str(home)
    app.config.setdefault("SQLALCHEMY_DATABASE_URI",
                          database_url(app.config.get("DATABASE_URL"), home))
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _instance_secret(home)

    if app.config.get("GRIDMGR_TRUSTED_PROXIES"):
        # Behind nginx: client addresses (rate limits, logs) come from X-Forwarded-For.
        hops = int(app.config["GRIDMGR_TRUSTED_PROXIES"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    db.init_app(app)
    limiter.init_app(app)
    compress.init_app(app)
    live.init_app(app)
    migrate.init_app(app, db, directory=str(Path(__file__).parent.parent / "migrations"),
                     compare_type=True)
    with app.app_context():
        if not app.config.get("DATABASE_URL") and "SQLALCHEMY_DATABASE_URI" not in (
                test_config or {}):
            start_embedded_on_connect(db.engine, home)
        tune_connection(db.engine)
        ping_after_idle(db.engine, app.config["GRIDMGR_DB_PING_AFTER_IDLE"])
    init_replica(app)
    end_sessions_despite_a_lost_server(app, db)

    import mobile_api

    mobile_api.init_app(app)
    from gridmgr.open311 import bp as open311_bp
    from gridmgr.opendata import bp as opendata_bp

    app.register_blueprint(open311_bp)
    app.register_blueprint(opendata_bp)
    import maps

    maps.init_app(app)
    import web

    web.init_app(app)
    app.after_request(_security_headers)
    _import_models()
    return app


def _security_headers(response: Response) -> Response:
    """The headers every answer carries; a view's own CSP gets ``frame-ancestors 'none'``
    added when it does not say it."""
    headers = response.headers
    headers.extend(SECURITY_HEADERS)
    policy = headers.get("Content-Security-Policy")
    if policy is None:
        headers.add("Content-Security-Policy", NO_FRAMING)
    elif "frame-ancestors" not in policy:
        headers["Content-Security-Policy"] = f"{policy}; {NO_FRAMING}"
    return response


def _import_models() -> None:
    """Every domain's models, so Alembic and the ORM see the whole schema."""
    import gridmgr.calendar.models  # noqa: F401
    import gridmgr.cases.idempotency  # noqa: F401
    import gridmgr.cases.models  # noqa: F401
    import gridmgr.categories.models  # noqa: F401
    import gridmgr.components.models  # noqa: F401
    import gridmgr.dispatch.models  # noqa: F401
    import gridmgr.evaluation.models  # noqa: F401
    import gridmgr.grids.models  # noqa: F401
    import gridmgr.live.outbox  # noqa: F401
    import gridmgr.notify.models  # noqa: F401
    import gridmgr.open311.models  # noqa: F401
    import gridmgr.people.models  # noqa: F401
    import gridmgr.webhooks.models  # noqa: F401


def _instance_secret(home: Path) -> str:
    """A per-instance secret kept in the instance folder, made once when none is configured."""
    path = home / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        os.chmod(path, 0o600)
    return path.read_text().strip()
