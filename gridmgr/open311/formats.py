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
