"""JSON bodies on the busiest routes: read by msgspec first, with the marshmallow schema that
defines them behind (answers are written by msgspec too: ``mobile_api.http.json_answer``).

Every body of the API is defined, documented and loaded by a marshmallow schema. On the busiest
routes (intake, case steps) its field-by-field load cost 60 – 110 µs of a request's CPU
(docs/intake.md); msgspec decodes and checks the same rules in about a microsecond.
:class:`QuickLoad` turns a schema's plain fields (strings, numbers and booleans, with length,
range, choice and anchored-pattern rules) into a msgspec type. A body that passes it loads to
exactly what the schema would give. Everything else goes to the schema itself: a field it
cannot express (an e-mail, a date, a dict) or an unknown key, a value it refuses, a body in
another encoding. So the schema stays the one definition, and every error is still its own.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Annotated, Any, Literal

import msgspec
from flask import current_app, request
from marshmallow import Schema, fields, missing, validate

from gridmgr.errors import InvalidInput

_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_ALL_BUT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_EMPTY_PAIR = re.compile(rb"\[\]|\{\}")


def refuse_deep_json(raw: bytes | str) -> None:
    """400 ``json_too_deep`` when the JSON text ``raw`` nests arrays and objects deeper than
    ``GRIDMGR_JSON_MAX_DEPTH`` (``malformed_json`` when its brackets do not pair). Every JSON
    parser of the app (Flask's, webargs', msgspec) recurses once per level and fails on about
    a thousand with an error that is no refusal.

    A body with no more brackets than the limit cannot be too deep: for the usual body the
    check is two counts. Otherwise its brackets alone (strings removed) lose their innermost
    level at each pass, in C; a body still holding some after ``limit`` passes is deeper."""
    limit = current_app.config["GRIDMGR_JSON_MAX_DEPTH"]
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _ALL_BUT_BRACKETS)
    for _ in range(limit):
        inner_removed = _EMPTY_PAIR.sub(b"", brackets)
        if not inner_removed:
            return
        if len(inner_removed) == len(brackets):
            raise InvalidInput("The body is not valid JSON: its brackets do not pair.",
                               code="malformed_json", status=400)
        brackets = inner_removed
    raise InvalidInput(f"The JSON body nests deeper than {limit} levels.",
                       code="json_too_deep", status=400)


def refuse_deep_json_body() -> None:
    """:func:`refuse_deep_json` and :func:`refuse_malformed_unicode` for the request's JSON
    body, before any view parses it."""
    if request.is_json:
        raw = request.get_data(cache=True)
        refuse_deep_json(raw)
        refuse_malformed_unicode(raw)


def refuse_malformed_unicode(raw: bytes) -> None:
    """400 ``malformed_json`` when the JSON text ``raw`` is not in a Unicode encoding (invalid
    or overlong UTF-8 bytes, an encoded surrogate); 422 ``invalid_text`` naming the field when
    one of its strings escapes half of a surrogate pair (``"\\ud800"``). Such a string would
    reach the database, which can store neither, from any endpoint that reads it.

    Decoding is the only cost of a usual body: the escapes are searched for only when the text
    holds a surrogate's escape at all."""
    try:
        decoded = raw.decode(json.detect_encoding(raw))
    except UnicodeDecodeError:
        raise InvalidInput("The body is not valid JSON: it is not well-formed UTF-8 text.",
                           code="malformed_json", status=400) from None
    if _SURROGATE_ESCAPE.search(decoded) is None:
        return
    try:
        body = json.loads(decoded)
    except ValueError:
        return  # malformed: the parser of the view refuses it
    name = _lone_surrogate_field(body)
    if name is not None:
        raise InvalidInput(f"{name} holds half of a surrogate pair, which text may not "
                           "contain.", code="invalid_text", field=name)


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _lone_surrogate_field(value: Any, name: str = "body") -> str | None:
    """The name of the first key or string under ``value`` holding a lone surrogate (Python's
    parser joins a well-formed pair into one character), or None."""
    if isinstance(value, str):
        return name if _SURROGATE.search(value) else None
    if isinstance(value, list):
        value = dict(enumerate(value))
    if isinstance(value, dict):
        for key, item in value.items():
            shown = str(key).encode("utf-8", "backslashreplace").decode("utf-8")
            path = shown if name == "body" else f"{name}.{shown}"
            if isinstance(key, str) and _SURROGATE.search(key):
                return path
            found = _lone_surrogate_field(item, path)
            if found:
                return found
    return None


_TYPES = {fields.String: str, fields.Float: float, fields.Integer: int, fields.Boolean: bool}


class QuickLoad:
    """``load(raw)``: the schema's result for a JSON body msgspec accepts, else None."""

    def __init__(self, schema: Schema) -> None:
        spec = [] if any(schema._hooks.values()) else _struct_fields(schema)
        self.names = tuple(name for name, *_ in spec)
        struct = msgspec.defstruct(f"Quick{type(schema).__name__}", spec,
                                   forbid_unknown_fields=True)
        self._decoder = msgspec.json.Decoder(struct) if spec else None

    def load(self, raw: bytes) -> dict | None:
        if self._decoder is None:
            return None
        try:
            body = self._decoder.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None
        return {name: value for name in self.names
                if (value := getattr(body, name)) is not msgspec.UNSET}


@functools.cache
def quick_load(schema: Schema) -> QuickLoad:
    """The :class:`QuickLoad` of a schema instance, made once."""
    return QuickLoad(schema)


def _struct_fields(schema: Schema) -> list[tuple]:
    """msgspec field specs for the fields it can check as the schema would; the others are
    left out, so that a body which has them is refused and goes to the schema."""
    spec = []
    for name, field in schema.load_fields.items():
        annotation = _annotation(field)
        if annotation is None or field.data_key not in (None, name) or not name.isidentifier():
            continue
        if field.required:
            spec.append((name, annotation))
        elif field.load_default is missing:
            spec.append((name, annotation, msgspec.UNSET))
        elif not callable(field.load_default):
            spec.append((name, annotation, field.load_default))
    # Fields with defaults must follow the required ones in a msgspec struct.
    return sorted(spec, key=len)


def _annotation(field: fields.Field) -> Any:
    """The msgspec type of one field (exact field classes only: an Email is a String with a
    rule msgspec lacks), or None when one of its rules cannot be expressed."""
    base = _TYPES.get(type(field))
    if base is None:
        return None
    constraints: dict[str, Any] = {}
    choices: tuple | None = None
    for rule in field.validators:
        if isinstance(rule, validate.Range) and base in (int, float):
            if rule.min is not None:
                constraints["ge" if rule.min_inclusive else "gt"] = rule.min
            if rule.max is not None:
                constraints["le" if rule.max_inclusive else "lt"] = rule.max
        elif isinstance(rule, validate.Length) and base is str:
            low, high = (rule.equal, rule.equal) if rule.equal is not None else (rule.min,
                                                                                 rule.max)
            if low is not None:
                constraints["min_length"] = low
            if high is not None:
                constraints["max_length"] = high
        elif (isinstance(rule, validate.Regexp) and base is str and not rule.regex.flags
              & ~re.UNICODE and rule.regex.pattern.startswith("^")):
            # marshmallow matches at the start, msgspec searches: equal when anchored.
            constraints["pattern"] = rule.regex.pattern
        elif isinstance(rule, validate.OneOf) and all(type(c) is base for c in rule.choices):
            choices = tuple(rule.choices)
        else:
            return None
    if choices is not None:
        if constraints:
            return None
        annotation = Literal[choices]
    else:
        annotation = Annotated[base, msgspec.Meta(**constraints)] if constraints else base
    if field.allow_none:
        annotation = annotation | None
    return annotation
