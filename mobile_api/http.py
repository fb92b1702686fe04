"""What every blueprint of the API shares over HTTP: the documented error body and statuses,
the check of the path and query, the reading of a JSON or multipart body, uploaded photos, and
JSON answers written by msgspec."""

from __future__ import annotations

import json

import msgspec
from flask import Response, current_app, request
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields
from werkzeug.datastructures import FileStorage

from gridmgr.cases.intake import refuse_invalid_text
from gridmgr.cases.photos import store_photo
from gridmgr.errors import InvalidInput
from mobile_api.json_bodies import quick_load, refuse_deep_json

MAX_PHOTOS = 9
ERRORS = {
    400: "malformed_json: the body is not valid JSON",
    413: "photo_too_large, photo_too_many_pixels (decoded size over the budget), "
         "request_entity_too_large",
    415: "bad_photo: an upload is not a readable JPEG/PNG/HEIC image",
    422: "invalid_input, outside_city, unknown_category, location_required, ...",
    429: "too_many_requests: public intake is rate limited",
}


class RefusalBody(Schema):
    code = fields.String(required=True)
    message = fields.String(required=True)
    details = fields.Dict()


class RefusalSchema(Schema):
    error = fields.Nested(RefusalBody, required=True)


def documentation_only(*decorators):
    """flask-smorest's ``alt_response`` and ``doc``, applied for what they document alone.

    Each also wraps the view in a function that only calls it, through ``ensure_sync`` (a
    coroutine check): the intake route went through eight such layers per request. Their
    documentation is kept on the view itself (``_apidoc``, which they copy and extend), and the
    view is returned unwrapped."""
    def decorator(view):
        documented = view
        for document in reversed(decorators):
            documented = document(documented)
        view._apidoc = documented._apidoc
        return view
    return decorator


def document_errors(blp_: Blueprint, *statuses: int, notes: dict | None = None):
    """``alt_response`` for each error status, all with the error body (documentation only)."""
    return documentation_only(*(
        blp_.alt_response(status, schema=RefusalSchema, description=(notes or {}).get(status)
                          or ERRORS.get(status) or "error")
        for status in statuses))


def refuse_invalid_url_text() -> None:
    """The path and the query under :func:`refuse_invalid_text` (NUL, which PostgreSQL text
    cannot hold, among the refused characters); the body's fields are checked by
    :func:`read_body`."""
    url = {"path": request.path}
    if request.query_string:
        url.update((f"query {name}", value) for name, value in request.args.items(multi=True))
    refuse_invalid_text(url)


def read_body(schema: Schema) -> tuple[dict, list[FileStorage]]:
    """The request's fields (JSON object or multipart form) validated by ``schema`` (a plain
    JSON body by its :func:`quick_load` first), and the uploaded ``photos`` parts;
    400 ``malformed_json``, 422 ``invalid_input`` or ``invalid_text``."""
    files: list[FileStorage] = []
    if request.mimetype == "multipart/form-data" or request.mimetype == (
            "application/x-www-form-urlencoded"):
        raw = {k: v for k, v in request.form.items()}
        if isinstance(raw.get("attributes"), str):
            refuse_deep_json(raw["attributes"])
            try:
                raw["attributes"] = json.loads(raw["attributes"])
            except ValueError:
                raise InvalidInput("attributes must be a JSON object.",
                                   code="invalid_input") from None
        files = [f for f in request.files.getlist("photos") if f.filename or f.content_length]
    elif request.mimetype == "application/json" and (
            data := quick_load(schema).load(request.get_data(cache=True))) is not None:
        refuse_invalid_text(data)
        return data, files
    else:
        raw = request.get_json(silent=True)
        if raw is None:
            if request.get_data(cache=True).strip():
                raise InvalidInput("The body is not valid JSON.", code="malformed_json",
                                   status=400)
            raw = {}
        if not isinstance(raw, dict):
            raise InvalidInput("The body must be a JSON object.", code="malformed_json",
                               status=400)
    try:
        data = schema.load(raw)
    except ValidationError as exc:
        raise InvalidInput("The request body is not valid.", code="invalid_input",
                           fields=exc.messages) from None
    refuse_invalid_text(data)
    if len(files) > MAX_PHOTOS:
        raise InvalidInput(f"At most {MAX_PHOTOS} photos per request.", code="too_many_photos")
    return data, files


def store_uploads(files: list[FileStorage]):
    """Check every uploaded photo from its size and header (413 ``photo_too_large`` or
    ``photo_too_many_pixels``, 415 ``bad_photo``). Nothing is decoded or written here: that
    happens when the case accepts them, so a refused request leaves no file."""
    try:
        return [store_photo(f.read(), f.filename) for f in files]
    finally:
        for f in files:
            f.close()


_ENCODER = msgspec.json.Encoder()


def json_answer(body: dict, status: int = 200) -> Response:
    """``body`` as a JSON response, without ``jsonify``'s key sorting and indentation logic
    (about 40 µs of a report's CPU)."""
    return current_app.response_class(_ENCODER.encode(body), status=status,
                                      mimetype="application/json")
