"""Thin HTTP handlers of the GeoReport v2 calls: parse, call the domain, render JSON or XML."""

from __future__ import annotations

from flask import current_app, request, url_for
from werkzeug.exceptions import HTTPException

from gridmgr.errors import DomainError, db_rollback
from gridmgr.open311 import bp
from gridmgr.open311 import services as svc
from gridmgr.open311.formats import CONTENT_TYPES, FORMATS, render

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
# When this endpoint's behaviour last changed (discovery's changeset).
CHANGESET = "2026-11-26T00:00:00Z"


def _format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise DomainError("unsupported_format",
                          f"Format {fmt!r} is not offered; use .json or .xml.", status=404)
    return fmt


def _suffix_format() -> str:
    path = request.path.rsplit("/", 1)[-1]
    return "xml" if path.endswith(".xml") else "json"


def language() -> str:
    """``zh`` when the request asks for Chinese (``locale`` or Accept-Language), else ``en``."""
    locale = (request.values.get("locale") or "").strip().lower()
    if locale:
        return "zh" if locale.startswith("zh") else "en"
    return "zh" if request.accept_languages.best_match(["zh", "en"]) == "zh" else "en"


def jurisdiction() -> svc.Jurisdiction:
    return svc.resolve_jurisdiction(request.values.get("jurisdiction_id"))


@bp.errorhandler(DomainError)
def _refused(exc: DomainError):
    db_rollback()
    # GeoReport knows 400 (bad request), 403 (api key) and 404 (not found); 409/422 are 400s.
    status = exc.status if exc.status in (403, 404, 413, 429) else 400
    return render(_suffix_format(), "errors", [{"code": status, "description": exc.message}],
                  status)


@bp.errorhandler(HTTPException)
def _http_refused(exc: HTTPException):
    db_rollback()
    status = exc.code or 500
    return render(_suffix_format(), "errors",
                  [{"code": status, "description": exc.description or exc.name}], status)


@bp.get("/discovery.<fmt>")
def discovery(fmt: str):
    """Where and how to reach this endpoint (GeoReport service discovery)."""
    fmt = _format(fmt)
    base = url_for("open311.discovery", fmt="json", _external=True).rsplit("/", 1)[0]
    config = current_app.config
    document = {
        "changeset": CHANGESET,
        "contact": config.get("GRIDMGR_OPEN311_CONTACT"),
        "key_service": config.get("GRIDMGR_OPEN311_KEY_SERVICE"),
        "endpoints": [{
            "specification": SPECIFICATION,
            "url": base,
            "changeset": CHANGESET,
            "type": "production",
            "formats": [CONTENT_TYPES["xml"].split(";")[0], CONTENT_TYPES["json"].split(";")[0]],
        }],
    }
    return render(fmt, "discovery", document)


@bp.get("/services.<fmt>")
def services(fmt: str):
    """GET Service List: every category as a service."""
    fmt = _format(fmt)
    jurisdiction()
    return render(fmt, "services", svc.service_list(language()))


@bp.get("/services/<service_code>.<fmt>")
def service_definition(service_code: str, fmt: str):
    """GET Service Definition: a category's extra questions."""
    fmt = _format(fmt)
    jurisdiction()
    return render(fmt, "service_definition", svc.service_definition(service_code, language()))


@bp.route("/<path:anything>", methods=["GET", "POST"])
def unknown(anything: str):
    """Anything else under the endpoint: a GeoReport 404, not an HTML page."""
    raise DomainError("not_found", f"There is no GeoReport call at {request.path}.", status=404)
