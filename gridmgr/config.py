"""Configuration read from the environment (``GRIDMGR_*``, ``DATABASE_URL``, ``REDIS_URL``)."""

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


def gridmgr_home() -> Path:
    """The instance folder: embedded database, photos, keys. ``GRIDMGR_HOME`` or ``./instance``."""
    return Path(os.environ.get("GRIDMGR_HOME", "instance")).resolve()


def rate_limit_storage(redis_url: str | None) -> tuple[str, dict]:
    """Flask-Limiter's storage URI and options for ``REDIS_URL`` (memory without one).

    A Redis behind Sentinel is written as python-socketio reads it,
    ``redis+sentinel://host1:26379,host2:26379/0/gridmgr`` (database, then the service Sentinel
    knows the master by); Flask-Limiter's storage wants the service as the path and the
    database as an option, so both follow the master Sentinel names after a failover.
    """
    if not redis_url:
        return "memory://", {}
    parsed = urlsplit(redis_url)
    if parsed.scheme != "redis+sentinel":
        return redis_url, {}
    database, service = ([*parsed.path.split("/")[1:3], "", ""])[:2]
    return (urlunsplit((parsed.scheme, parsed.netloc, f"/{service}", "", "")),
            {"db": int(database)} if database else {})


class Config:
    """Defaults; every value can be overridden by an environment variable of the same name."""

    SECRET_KEY = os.environ.get("SECRET_KEY")
    DATABASE_URL = os.environ.get("DATABASE_URL")
    REDIS_URL = os.environ.get("REDIS_URL")
    # A streaming replica (or an entry point to one) for the wall's feeds and tiles, statistics,
    # the monthly report and open data; unset, they read the primary (gridmgr.database.replica).
    GRIDMGR_REPLICA_URL = os.environ.get("GRIDMGR_REPLICA_URL")
    # The pool hands out the connection returned last: a process serving one request at a
    # time then works on one warm server backend instead of taking turns between all it
    # opened (intake, measured: 663 → 732 reports/s), and connections left idle can expire.
    SQLALCHEMY_ENGINE_OPTIONS: dict = {"pool_use_lifo": True}
    # Seconds a pooled connection may sit unused before it is tested at its next checkout
    # (instead of SQLAlchemy's pre-ping on every checkout: gridmgr.database.engine).
    GRIDMGR_DB_PING_AFTER_IDLE = float(os.environ.get("GRIDMGR_DB_PING_AFTER_IDLE", 10))
    MAX_CONTENT_LENGTH = int(os.environ.get("GRIDMGR_MAX_UPLOAD_BYTES", 40 * 1024 * 1024))
    JSON_AS_ASCII = False

    # flask-smorest / OpenAPI
    API_TITLE = "gridmgr mobile API"
    API_VERSION = "v1"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/api/v1"
    OPENAPI_JSON_PATH = "openapi.json"

    # Rate limits (Flask-Limiter): storage in Redis when configured (directly or through
    # Sentinel: docs/deploy.md), else memory.
    RATELIMIT_STORAGE_URI, RATELIMIT_STORAGE_OPTIONS = rate_limit_storage(
        os.environ.get("REDIS_URL"))
    # X-RateLimit-* on every answer would cost a storage round trip each; a 429 says
    # Retry-After (gridmgr.errors).
    RATELIMIT_HEADERS_ENABLED = False
    # A Redis outage must not fail a report: count in memory until Redis is back.
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    # The intake limit's counts reach Redis in batches, at least this often (seconds) while
    # reports come (gridmgr.shared_counts); 0: every report is counted in Redis at once.
    GRIDMGR_INTAKE_LIMIT_FLUSH_SECONDS = float(
        os.environ.get("GRIDMGR_INTAKE_LIMIT_FLUSH_SECONDS", 0.1))

    # A JSON body nested deeper than this is refused (400 json_too_deep) on every endpoint.
    GRIDMGR_JSON_MAX_DEPTH = int(os.environ.get("GRIDMGR_JSON_MAX_DEPTH", 32))
    # Bounds of a report's free-form ``attributes``: size as JSON (413), nesting depth, keys
    # and list items in all, characters of each key or string (422).
    GRIDMGR_REPORT_ATTRIBUTES_MAX_BYTES = int(
        os.environ.get("GRIDMGR_REPORT_ATTRIBUTES_MAX_BYTES", 8 * 1024))
    GRIDMGR_REPORT_ATTRIBUTES_MAX_DEPTH = int(
        os.environ.get("GRIDMGR_REPORT_ATTRIBUTES_MAX_DEPTH", 4))
    GRIDMGR_REPORT_ATTRIBUTES_MAX_KEYS = int(
        os.environ.get("GRIDMGR_REPORT_ATTRIBUTES_MAX_KEYS", 100))
    GRIDMGR_REPORT_ATTRIBUTES_MAX_STRING = int(
        os.environ.get("GRIDMGR_REPORT_ATTRIBUTES_MAX_STRING", 1000))
    # Steps of the loop (verify, handle, …) per signed-in user, all steps together: far above
    # what a person does, enough for a phone replaying a day's offline queue.
    GRIDMGR_STEP_RATE_LIMIT = os.environ.get("GRIDMGR_STEP_RATE_LIMIT", "120 per minute")

    # Photos: pixels (width × height, read from the header before anything is decoded). 52 MP
    # admits a phone's 50 MP photo (8160 × 6144), about 150 MB once decoded; a picture of a few
    # kB declaring 60 MP, or a 108/200 MP full-sensor shot, is refused (413).
    GRIDMGR_PHOTO_MAX_PIXELS = int(os.environ.get("GRIDMGR_PHOTO_MAX_PIXELS", 52_000_000))

    # Compressed answers (Flask-Compress): pages, scripts, styles and manifests, the bytes a
    # phone on a slow network waits for, and JSON from 4 kB (catalogues, lists, feeds); a
    # report's or a step's answer is smaller and leaves as it is (intake's CPU is counted).
    COMPRESS_MIMETYPES = ["text/html", "text/css", "text/javascript", "application/javascript",
                          "application/manifest+json", "image/svg+xml", "application/json",
                          "application/geo+json"]
    COMPRESS_MIN_SIZE = 4096
    COMPRESS_ALGORITHM = ["zstd", "br", "gzip"]

    # Number of reverse proxies (nginx) in front of the app whose X-Forwarded-* to trust.
    GRIDMGR_TRUSTED_PROXIES = int(os.environ.get("GRIDMGR_TRUSTED_PROXIES", 0))

    # The map wall's session cookie (sealed: maps.session). A wall left without a request
    # this many seconds is signed out; each request starts the time again.
    PERMANENT_SESSION_LIFETIME = int(os.environ.get("GRIDMGR_WALL_IDLE_SECONDS", 8 * 3600))
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    # Secure is added by itself to a cookie sent over HTTPS; this forces it everywhere.
    SESSION_COOKIE_SECURE = os.environ.get("GRIDMGR_SESSION_COOKIE_SECURE", "") == "1"
    # CSRF (Flask-WTF): checked by the blueprints whose forms a cookie authenticates (the
    # wall), not by the bearer-token API; a form's token lives as long as its session.
    WTF_CSRF_CHECK_DEFAULT = False
    WTF_CSRF_TIME_LIMIT = None

    # Notifications and webhooks (gridmgr.notify, gridmgr.webhooks; docs/notifications.md).
    # Links in messages start with this address.
    GRIDMGR_PUBLIC_URL = os.environ.get("GRIDMGR_PUBLIC_URL", "http://127.0.0.1:5000")
    GRIDMGR_LANGUAGE = os.environ.get("GRIDMGR_LANGUAGE", "zh")  # when a reporter said none
    GRIDMGR_SMTP_URL = os.environ.get("GRIDMGR_SMTP_URL")  # smtp://user:pw@host:587, smtps://
    GRIDMGR_MAIL_FROM = os.environ.get("GRIDMGR_MAIL_FROM", "gridmgr@localhost")
    GRIDMGR_SMS_GATEWAY_URL = os.environ.get("GRIDMGR_SMS_GATEWAY_URL")
    # The gateway's request body; {to} and {text} are filled in (JSON-escaped for JSON).
    GRIDMGR_SMS_BODY_TEMPLATE = os.environ.get(
        "GRIDMGR_SMS_BODY_TEMPLATE", '{"to": "{to}", "text": "{text}"}')
    GRIDMGR_SMS_CONTENT_TYPE = os.environ.get("GRIDMGR_SMS_CONTENT_TYPE", "application/json")
    GRIDMGR_WEB_PUSH = os.environ.get("GRIDMGR_WEB_PUSH", "1") == "1"
    # Who is told what (comma-separated kinds; empty: nobody).
    GRIDMGR_NOTIFY_REPORTERS = os.environ.get("GRIDMGR_NOTIFY_REPORTERS",
                                              "filed,cancelled,handled,closed")
    GRIDMGR_NOTIFY_STAFF = os.environ.get("GRIDMGR_NOTIFY_STAFF",
                                          "dispatched,escalated,approval")
    # Retries: after base × 2^attempts seconds, at most max apart; messages are given up
    # after GIVE_UP seconds (webhook deliveries never: their endpoint is paused instead).
    GRIDMGR_NOTIFY_RETRY_SECONDS = float(os.environ.get("GRIDMGR_NOTIFY_RETRY_SECONDS", 10))
    GRIDMGR_NOTIFY_RETRY_MAX_SECONDS = float(
        os.environ.get("GRIDMGR_NOTIFY_RETRY_MAX_SECONDS", 600))
    GRIDMGR_NOTIFY_GIVE_UP_SECONDS = float(
        os.environ.get("GRIDMGR_NOTIFY_GIVE_UP_SECONDS", 2 * 86400))
    GRIDMGR_NOTIFY_POLL_SECONDS = float(os.environ.get("GRIDMGR_NOTIFY_POLL_SECONDS", 0.5))
    GRIDMGR_NOTIFY_TIMEOUT_SECONDS = float(os.environ.get("GRIDMGR_NOTIFY_TIMEOUT_SECONDS", 10))
    GRIDMGR_WEBHOOK_PAUSE_AFTER = int(os.environ.get("GRIDMGR_WEBHOOK_PAUSE_AFTER", 20))

    # Public outputs (Open311, open data, tracking; gridmgr.opendata.redaction): a citizen's
    # report is published from this state on (reported, verified or filed), and a published
    # point has this many decimals (4: about 10 m).
    GRIDMGR_PUBLISH_CITIZEN_REPORTS_FROM = os.environ.get(
        "GRIDMGR_PUBLISH_CITIZEN_REPORTS_FROM", "verified")
    GRIDMGR_PUBLIC_COORDINATE_DECIMALS = int(
        os.environ.get("GRIDMGR_PUBLIC_COORDINATE_DECIMALS", 4))

    # City defaults (a city can override its own).
    GRIDMGR_TIMEZONE = os.environ.get("GRIDMGR_TIMEZONE", "Asia/Shanghai")
    GRIDMGR_UNIT_GRID_AREA_M2 = float(os.environ.get("GRIDMGR_UNIT_GRID_AREA_M2", 10_000))

    # Intake: reports per client address and minute (gridmgr's own count, mobile_api.reports),
    # and sign-ins and sign-ups per address (Flask-Limiter). RATELIMIT_ENABLED False (tests,
    # benchmarks) turns every limit off.
    RATELIMIT_ENABLED = os.environ.get("GRIDMGR_RATELIMIT_ENABLED", "1") == "1"
    GRIDMGR_INTAKE_RATE_LIMIT = os.environ.get("GRIDMGR_INTAKE_RATE_LIMIT", "60 per minute")
    GRIDMGR_LOGIN_RATE_LIMIT = os.environ.get("GRIDMGR_LOGIN_RATE_LIMIT", "10 per minute")
    GRIDMGR_REGISTER_RATE_LIMIT = os.environ.get("GRIDMGR_REGISTER_RATE_LIMIT", "5 per hour")
    # Signed tokens of the API: seconds an access token and a refresh token are valid.
    GRIDMGR_ACCESS_TOKEN_SECONDS = int(os.environ.get("GRIDMGR_ACCESS_TOKEN_SECONDS", 3600))
    GRIDMGR_REFRESH_TOKEN_SECONDS = int(
        os.environ.get("GRIDMGR_REFRESH_TOKEN_SECONDS", 30 * 24 * 3600))

    # Photos: bytes of one upload (413 beyond).
    GRIDMGR_PHOTO_MAX_BYTES = int(os.environ.get("GRIDMGR_PHOTO_MAX_BYTES", 10 * 1024 * 1024))
    # How far (metres) from the case a worker may stand to handle it on site, and how far from
    # a report a city component (a manhole cover, a lamp post) is offered as the one meant.
    GRIDMGR_HANDLE_RADIUS_M = float(os.environ.get("GRIDMGR_HANDLE_RADIUS_M", 200))
    GRIDMGR_COMPONENT_RADIUS_M = float(os.environ.get("GRIDMGR_COMPONENT_RADIUS_M", 30))
    # A report without a category takes the suggester's first category at this confidence
    # (0–1) or above; below it, the report is filed uncategorised for the operator.
    GRIDMGR_CATEGORY_MIN_CONFIDENCE = float(
        os.environ.get("GRIDMGR_CATEGORY_MIN_CONFIDENCE", 0.35))
    # A city's suggester is trained once it has this many described cases; until then its
    # reports are matched on the catalogue's names and keywords alone.
    GRIDMGR_SUGGESTER_MIN_CASES = int(os.environ.get("GRIDMGR_SUGGESTER_MIN_CASES", 100))
    # A dispatch must be accepted in time even when its category names no accept limit: this
    # limit then (amount and unit, as a category's limits): half an hour, continuous.
    GRIDMGR_ACCEPT_LIMIT = {"amount": 0.5, "unit": "urgent_hours"}
    # Workers' positions: seconds between two stored positions of one worker, and the age
    # beyond which a position no longer counts for dispatch by distance.
    GRIDMGR_POSITION_INTERVAL_S = float(os.environ.get("GRIDMGR_POSITION_INTERVAL_S", 5))
    GRIDMGR_POSITION_MAX_AGE_S = float(os.environ.get("GRIDMGR_POSITION_MAX_AGE_S", 15 * 60))

    # The live channel: Socket.IO's channel in Redis, how often a relay looks for events when
    # no NOTIFY woke it (seconds), how many events a reconnecting client may replay, and how
    # many days events are kept.
    GRIDMGR_SOCKETIO_CHANNEL = os.environ.get("GRIDMGR_SOCKETIO_CHANNEL", "gridmgr-socketio")
    GRIDMGR_LIVE_POLL_SECONDS = float(os.environ.get("GRIDMGR_LIVE_POLL_SECONDS", 1.0))
    GRIDMGR_LIVE_REPLAY_MAX = int(os.environ.get("GRIDMGR_LIVE_REPLAY_MAX", 10_000))
    GRIDMGR_LIVE_RETENTION_DAYS = float(os.environ.get("GRIDMGR_LIVE_RETENTION_DAYS", 7))

    # Open311 (GeoReport v2): POSTs per client address, and what discovery tells a client.
    GRIDMGR_OPEN311_POST_RATE = os.environ.get("GRIDMGR_OPEN311_POST_RATE", "30/minute")
    GRIDMGR_OPEN311_CONTACT = os.environ.get(
        "GRIDMGR_OPEN311_CONTACT", "The city's urban management command centre (城市管理指挥中心).")
    GRIDMGR_OPEN311_KEY_SERVICE = os.environ.get(
        "GRIDMGR_OPEN311_KEY_SERVICE",
        "Ask the city's gridmgr administrator for an API key (gridmgr open311 keys add NAME).")
