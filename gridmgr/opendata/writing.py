"""How every published document is written, whatever the database holds.

Intake refuses text that XML cannot carry, but older rows and imported history may still hold
it; a single such character would make a whole GeoReport XML list unreadable. So every writer
of a public document (GeoReport JSON and XML, open data, statistics CSVs, the daily dump)
passes its values through :func:`published`, which drops the characters XML 1.0 forbids: C0
controls other than tab, line feed and carriage return, U+FFFE, U+FFFF and lone surrogates.

Every CSV line goes through :func:`csv_line`: besides that cleaning, a text cell that a
spreadsheet would run as a formula (it starts with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return) gets a leading single quote (OWASP's rule against CSV injection), and a line
break inside a cell is written as a line feed: the csv module quotes a cell holding a line feed
but, with ``\n`` line ends, not one holding a lone carriage return, which readers take for the
end of the line. Numbers are written as numbers, so a negative longitude stays numeric.

Region boundaries are published to :data:`BOUNDARY_DECIMALS` decimals (about 0.1 m); a case's
point, which says where a citizen stood, is rounded by the public side's rule
(:func:`gridmgr.opendata.redaction.public_coordinate`).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable

# Characters outside XML 1.0's Char production (https://www.w3.org/TR/xml/#charsets).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
BOUNDARY_DECIMALS = 6


def xml_text(text: str) -> str:
    """``text`` without the characters XML 1.0 forbids (so JSON and XML carry the same text)."""
    return _NOT_XML.sub("", text)


def published(value):
    """``value`` (dicts, lists, scalars) with every string passed through :func:`xml_text`."""
    if isinstance(value, str):
        return xml_text(value)
    if isinstance(value, dict):
        return {key: published(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [published(item) for item in value]
    return value


def spreadsheet_cell(value):
    """A CSV cell value: text cleaned and, when it would start a formula, quoted with ``'``;
    numbers, booleans and ``None`` unchanged."""
    if not isinstance(value, str):
        return value
    value = xml_text(value)
    if value.startswith(FORMULA_STARTS):
        value = "'" + value
    return value.replace("\r\n", "\n").replace("\r", "\n")


def csv_line(cells: Iterable) -> str:
    """One CSV line, ``\\n``-terminated, every cell passed through :func:`spreadsheet_cell`."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(spreadsheet_cell(c) for c in cells)
    return buffer.getvalue()
