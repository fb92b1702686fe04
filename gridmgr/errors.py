"""Structured errors: every refusal is a 4xx with a machine-readable code and a sentence.

The sentence follows the caller's ``Accept-Language`` (``zh``, ``zh-CN``, … get Chinese; any
other language, or none, English); the code is the same in every language. Sentences are
translated from the catalogue in ``gridmgr/translations`` when the answer is written: a plain
sentence by its exact English text, a :class:`Sentence` by its template, its values put in
afterwards (each one translated too when the catalogue has it, e.g. a role or an action).
"""

from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path

import psycopg2
from flask import Flask, has_request_context, jsonify, request
from flask_babel import Domain, force_locale
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException

API_LANGUAGES = ("en", "zh")
TRANSLATIONS = Path(__file__).parent / "translations"
_catalogue = Domain(translation_directories=str(TRANSLATIONS))


class Sentence(str):
    """An English sentence made from a ``%(name)s`` template, kept so that the error answer
    can translate the template and fill it in again: ``Sentence("No case has the id
    %(id)s.", id=7)``. It is the English text wherever a plain string is expected."""

    template: str
    values: dict

    def __new__(cls, template: str, **values) -> Sentence:
        sentence = super().__new__(cls, template % values if values else template)
        sentence.template, sentence.values = template, values
        return sentence


def api_language() -> str:
    """The request's language for error sentences: zh for any zh-*, else en."""
    if not has_request_context():
        return "en"
    return request.accept_languages.best_match(API_LANGUAGES) or "en"


def translate(message: str) -> str:
    """``message`` in the request's language (unchanged in English or when not catalogued)."""
    language = api_language()
    if language == "en" or not message:
        return str(message)
    with force_locale(language):
        if isinstance(message, Sentence):
            values = {name: _catalogue.gettext(value) if isinstance(value, str) and value
                      else value for name, value in message.values.items()}
            return _catalogue.gettext(message.template) % values if values \
                else _catalogue.gettext(message.template)
        return _catalogue.gettext(message)


class DomainError(Exception):
    """A refusal from the domain: ``code`` for machines, ``message`` for people."""

    status = 400

    def __init__(self, code: str, message: str, status: int | None = None, **details):
        super().__init__(message)
        self.code = code
        self.message = message
        if status is not None:
            self.status = status
        self.details = details

    def to_dict(self) -> dict:
        body = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class NotFound(DomainError):
    status = 404

    def __init__(self, message: str, code: str = "not_found", **details):
        super().__init__(code, message, **details)


class Forbidden(DomainError):
    status = 403

    def __init__(self, message: str, code: str = "forbidden", **details):
        super().__init__(code, message, **details)


class Conflict(DomainError):
    status = 409

    def __init__(self, message: str, code: str = "conflict", **details):
        super().__init__(code, message, **details)


class RateLimited(DomainError):
    """429 ``too_many_requests``; the answer says when to retry (``Retry-After``)."""

    status = 429

    def __init__(self, message: str, retry_after: int):
        super().__init__("too_many_requests", message)
        self.retry_after = retry_after


class InvalidInput(DomainError):
    status = 422

    def __init__(self, message: str, code: str = "invalid_input", **details):
        super().__init__(code, message, **details)


def error_response(code: str, message: str, status: int, details: dict | None = None):
    body = {"code": code, "message": translate(message)}
    if details:
        body["details"] = details
    return jsonify(error=body), status


def _http_code_name(exc: HTTPException) -> str:
    return (exc.name or "error").lower().replace(" ", "_").replace("'", "")


def register_error_handlers(app: Flask) -> None:
    """JSON errors for the API; a 500 is a bug and says so without leaking internals."""

    @app.errorhandler(DomainError)
    def _domain_error(exc: DomainError):
        db_rollback()
        response = error_response(exc.code, exc.message, exc.status, exc.details)
        if isinstance(exc, RateLimited):
            response[0].headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        db_rollback()
        data = getattr(exc, "data", None) or {}
        messages = data.get("messages")
        if messages is not None:  # webargs / marshmallow validation
            return error_response("invalid_input", "The request body or query is not valid.",
                                  422 if exc.code in (400, 422) else exc.code,
                                  {"fields": messages})
        response = error_response(_http_code_name(exc), exc.description or exc.name,
                                  exc.code or 500)
        if exc.code == 429:
            retry = _retry_after()
            if retry is not None:
                response[0].headers["Retry-After"] = str(retry)
        return response

    @app.errorhandler(DBAPIError)
    @app.errorhandler(psycopg2.OperationalError)
    @app.errorhandler(psycopg2.InterfaceError)
    def _database_unreachable(exc: Exception):
        # Statements on the driver's own cursor (gridmgr.database.prepared) raise psycopg2's
        # errors; the ORM's come wrapped. Only a lost or refused connection answers 503.
        if isinstance(exc, DBAPIError) and not (
                exc.connection_invalidated
                or isinstance(exc.orig, psycopg2.OperationalError | psycopg2.InterfaceError)):
            raise exc
        with contextlib.suppress(DBAPIError):  # the connection is gone; the pool replaces it
            db_rollback()
        # The pool's other idle connections went with it (a server restarted or failed over):
        # a new pool, so that the next request connects afresh instead of finding each dead
        # one in turn; connections in use are let go as they come back.
        from gridmgr.extensions import db

        db.engine.dispose(close=False)
        response = error_response("database_unavailable",
                                  "The database cannot be reached just now; try again.", 503)
        response[0].headers["Retry-After"] = "1"
        return response


def _retry_after() -> int | None:
    """Seconds until the exceeded rate limit's window resets (the limiter's X-RateLimit
    headers are off: they cost a storage round trip on every request, not only on a 429)."""
    from gridmgr.extensions import limiter

    try:
        limit = limiter.current_limit
        return max(1, math.ceil(limit.reset_at - time.time())) if limit else None
    except Exception:  # noqa: BLE001 - the storage may be down; the 429 stands without it
        return None


def db_rollback() -> None:
    """Nothing a refused request did may stay in the session."""
    from gridmgr.extensions import db

    db.session.rollback()
