"""GeoReport v2 documents in JSON and XML, the format chosen by the URL suffix.

The same Python value (dicts, lists, scalars) is written as JSON or, with ElementTree, as the
XML the specification shows: a list becomes a root element holding one child per item
(``<services><service>…``), a dict becomes child elements in order. ``None`` is JSON ``null``
and an empty XML element, except ``media_url``, which XML leaves out when there is none (an
empty element would read as an empty URL). Every string is first passed through
:func:`gridmgr.opendata.writing.published`, so text XML forbids never reaches either format.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from xml.etree import ElementTree

from flask import Response

from gridmgr.opendata.writing import published

FORMATS = ("json", "xml")
CONTENT_TYPES = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}

# Element name of one item of a list, by the list's own element name.
ITEM_TAGS = {
    "services": "service",
    "service_requests": "request",
    "service_request_updates": "request_update",
    "errors": "error",
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
    "duplicates": "duplicate",
    "notes": "note",
    "history": "entry",
}
OMIT_WHEN_NONE_IN_XML = {"media_url"}


def w3c_datetime(value: datetime | None, tz) -> str | None:
    """A timezone-aware datetime as W3C/ISO 8601 with its offset, e.g. 2026-11-26T18:30:00+08:00."""
    if value is None:
        return None
    return value.astimezone(tz).isoformat(timespec="seconds")


def parse_w3c_datetime(text: str, name: str) -> datetime:
    """A W3C datetime (any offset, optional fractions; a date alone is its midnight) as aware
    UTC; a value without an offset is taken as UTC. Anything else is a 400 naming ``name``."""
    from gridmgr.errors import DomainError

    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise DomainError("invalid_datetime",
                          f"{name} must be a W3C datetime such as 2026-11-26T09:30:00+08:00, "
                          f"not {text!r}.") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+14:00 is before the first representable instant
        raise DomainError("invalid_datetime",
                          f"{name} is outside the years 1 to 9999 once taken to UTC.") from None


def _scalar(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _fill(element: ElementTree.Element, value) -> None:
    if isinstance(value, dict):
        for key, child in value.items():
            if child is None and key in OMIT_WHEN_NONE_IN_XML:
                continue
            _fill(ElementTree.SubElement(element, key), child)
    elif isinstance(value, list):
        tag = ITEM_TAGS.get(element.tag, "item")
        for item in value:
            _fill(ElementTree.SubElement(element, tag), item)
    elif value is not None:
        element.text = _scalar(value)


def to_xml(root: str, value) -> bytes:
    """``value`` as an XML document whose root element is ``root``."""
    element = ElementTree.Element(root)
    _fill(element, value)
    return ElementTree.tostring(element, encoding="utf-8", xml_declaration=True)


def render(fmt: str, root: str, value, status: int = 200) -> Response:
    """A response in ``fmt``; ``root`` names the XML root element (JSON has none)."""
    value = published(value)
    if fmt == "xml":
        body = to_xml(root, value)
    else:
        body = json.dumps(value, ensure_ascii=False).encode("utf-8")
        fmt = "json"
    return Response(body, status=status, content_type=CONTENT_TYPES[fmt])
