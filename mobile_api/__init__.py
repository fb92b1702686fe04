"""The versioned REST API for phones and clients, under ``/api/v1``, with its OpenAPI document.

Each module here is one domain's HTTP face: it parses, calls one domain function in
``gridmgr/<domain>/`` and serialises. Rules live in the domain, not here.
"""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api as _Api
from werkzeug.exceptions import HTTPException

from gridmgr.errors import register_error_handlers
from mobile_api.json_bodies import refuse_deep_json_body


class Api(_Api):
    """flask-smorest's Api with gridmgr's error body: ``{"error": {"code", "message"}}``."""

    def _register_error_handlers(self):
        # gridmgr.errors handles HTTPException for the whole app (API, Open311 aside).
        pass

    def handle_http_exception(self, error: HTTPException):  # pragma: no cover - not registered
        raise error


api = Api()


def init_app(app: Flask) -> None:
    """Bind the API and register every domain's blueprint under ``/api/v1``."""
    api.init_app(app, spec_kwargs={"servers": [{"url": "/"}]})
    register_error_handlers(app)
    app.before_request(refuse_deep_json_body)  # every JSON body of the app, API or not
    from mobile_api import (
        admin,
        auth,
        cases,
        categories,
        components,
        dispatch,
        docs,
        health,
        notify,
        prevention,
        regions,
        reports,
        stats,
        webhooks,
    )

    auth.register_security_scheme(api)
    for module in (auth, admin, regions, categories, reports, cases, dispatch, stats,
                   prevention, health, notify, webhooks, components):
        api.register_blueprint(module.blp, url_prefix="/api/v1")
    app.register_blueprint(docs.bp)
