"""Thin HTTP handlers of the GeoReport v2 calls: parse, call the domain, render JSON or XML."""

from __future__ import annotations

from flask import current_app, request, send_file, url_for
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from gridmgr.errors import DomainError, db_rollback
from gridmgr.extensions import db, limiter
from gridmgr.open311 import bp
from gridmgr.open311 import service_requests as sr
from gridmgr.open311 import services as svc
from gridmgr.open311.formats import CONTENT_TYPES, FORMATS, render
from gridmgr.opendata.exports import refuse_nul

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


@bp.before_request
def _readable_query() -> None:
    if request.method == "GET":
        refuse_nul(request)


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
    description = exc.description or exc.name
    if status == 429:
        description = f"Too many requests from this address ({description}); try again later."
    return render(_suffix_format(), "errors", [{"code": status, "description": description}],
                  status)


@bp.get("/discovery.<fmt>")
def discovery(fmt: str):
    """Where and how to reach this endpoint (GeoReport service discovery)."""
    fmt = _format(fmt)
    base = url_for("open311.discovery", fmt="json", _external=True).rsplit("/", 1)[0]
    config = current_app.config
    document = {
        "changeset": CHANGESET,
        "contact": config["GRIDMGR_OPEN311_CONTACT"],
        "key_service": config["GRIDMGR_OPEN311_KEY_SERVICE"],
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


@bp.post("/requests.<fmt>")
@limiter.limit(lambda: current_app.config["GRIDMGR_OPEN311_POST_RATE"])
def create_request(fmt: str):
    """POST Service Request: a report on the ``open311`` channel; api_key in body or query.

    The body is the form the standard names (application/x-www-form-urlencoded, or multipart
    with a ``media`` file) or a JSON object of the same fields, its extra questions as
    ``"attribute": {"CODE": "value" or ["values"]}``."""
    fmt = _format(fmt)
    fields, attributes = sr.posted_fields(request)
    api_key = fields.get("api_key")
    if not api_key:
        raise DomainError("api_key_missing", "api_key is required to file a request.",
                          status=403)
    new = sr.NewRequest(
        service_code=fields.get("service_code"), lat=fields.get("lat"), long=fields.get("long"),
        address_string=fields.get("address_string"), address_id=fields.get("address_id"),
        description=fields.get("description"), first_name=fields.get("first_name"),
        last_name=fields.get("last_name"), email=fields.get("email"), phone=fields.get("phone"),
        media_url=fields.get("media_url"), attributes=attributes)
    answer = sr.file_request(new, fields.get("jurisdiction_id"), api_key,
                             request.files.get("media"), language())
    return render(fmt, "service_requests", [answer])


@bp.get("/requests.<fmt>")
def list_requests(fmt: str):
    """GET Service Requests, with the page/page_size and extensions extensions."""
    fmt = _format(fmt)
    query = sr.parse_query(request.args)
    return render(fmt, "service_requests", sr.find_requests(query, jurisdiction(), language()))


@bp.get("/requests/<service_request_id>.<fmt>")
def show_request(service_request_id: str, fmt: str):
    """GET Service Request: one request, still a list."""
    fmt = _format(fmt)
    extensions = (request.args.get("extensions") or "").lower() in ("true", "1", "yes")
    return render(fmt, "service_requests",
                  sr.find_request(service_request_id, jurisdiction(), language(), extensions))


@bp.get("/tokens/<token>.<fmt>")
def show_token(token: str, fmt: str):
    """GET service_request_id from a token."""
    fmt = _format(fmt)
    jurisdiction()
    return render(fmt, "service_requests", [sr.request_of_token(token)])


@bp.get("/servicerequestupdates.<fmt>")
def request_updates(fmt: str):
    """GET Service Request Updates (extension): the steps of cases in a time window."""
    fmt = _format(fmt)
    return render(fmt, "service_request_updates",
                  sr.find_updates(request.args, jurisdiction(), language()))


@bp.get("/media/<sha256>.jpg")
def media(sha256: str):
    """The public copy (EXIF stripped) of a request's photo: what ``media_url`` points at."""
    from gridmgr.cases.models import Photo
    from gridmgr.cases.photos import photo_file

    public = db.session.scalar(select(Photo.id).where(Photo.sha256 == sha256,
                                                      Photo.public.is_(True)).limit(1))
    if public is None:
        raise DomainError("not_found", "No public photo has this name.", status=404)
    path, mime = photo_file(sha256, "public")
    return send_file(path, mimetype=mime, max_age=86400)


@bp.route("/<path:anything>", methods=["GET", "POST"])
def unknown(anything: str):
    """Anything else under the endpoint: a GeoReport 404, not an HTML page."""
    raise DomainError("not_found", f"There is no GeoReport call at {request.path}.", status=404)
