"""What public outputs do with free text.

Descriptions and the public notes of a case's history are public in Open311 practice, so the
GeoReport endpoint shows them; but a citizen often writes a phone number or an e-mail address
into a description. Before any free text leaves through a public interface, e-mail addresses
(also disguised: ``name(at)example.com``, ``name at example dot com``), phone numbers (Chinese
mobile and landline numbers written with spaces, dots or dashes, and separated or
``+``-prefixed international ones) and 18-digit PRC resident identity card numbers are
replaced by ``[redacted]``. Full-width and other compatibility forms (``１３８…``, ``＠``)
are matched as their ASCII equivalents (NFKC), while the text around a match is kept as
written. Long digit runs without separators other than those are kept: they are case codes
and region codes. The bulk open data carries no free text at all.
"""

from __future__ import annotations

import re
import unicodedata

from gridmgr.opendata.writing import xml_text

REDACTED = "[redacted]"

_SEP = r"[\s.\-\u2010-\u2015]"  # between digits: space, dot, hyphen or dash
_AT = r"(?:\s*[(\[{<]\s*at\s*[)\]}>]\s*|\s+at\s+)"
_DOT = r"(?:\.|\s*[(\[{<]\s*dot\s*[)\]}>]\s*|\s+dot\s+)"

_PATTERNS = [
    re.compile(r"[\w.+-]+\s*@\s*[\w-]+(?:\.[\w-]+)+"),                 # e-mail
    # a disguised e-mail: its last label must be letters, so "arrived at 9.30" stays
    re.compile(rf"[\w.+-]+{_AT}[\w-]+(?:{_DOT}[\w-]+)*?{_DOT}[^\W\d_]{{2,}}(?![\w-])",
               re.IGNORECASE),
    re.compile(rf"(?<!\d)(?:\(?(?:\+|00)?86\)?{_SEP}*)?1{_SEP}?[3-9](?:{_SEP}?\d){{9}}(?!\d)"),
    re.compile(rf"(?<!\d)\(?0\d{{2,3}}\)?{_SEP}?\d{{3,4}}{_SEP}?\d{{4}}(?!\d)"),  # landline
    re.compile(r"\+\d[\d\s().-]{6,}\d"),                                 # +international
    re.compile(r"(?<!\d)\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}(?!\d)"),        # 555-123-4567
    # resident identity card: region, birth date, serial, check digit (0-9 or X)
    re.compile(rf"(?<!\d)[1-9]\d{{5}}{_SEP}?(?:18|19|20)\d{{2}}(?:0[1-9]|1[0-2])"
               rf"(?:0[1-9]|[12]\d|3[01]){_SEP}?\d{{3}}[\dXx](?![0-9A-Za-z])"),
]


def _compatible(text: str) -> tuple[str, list[int] | None]:
    """``text`` in NFKC, character by character, with the index in ``text`` of each of its
    characters (None when ``text`` is already NFKC)."""
    if unicodedata.is_normalized("NFKC", text):
        return text, None
    parts: list[str] = []
    origin: list[int] = []
    for i, char in enumerate(text):
        folded = unicodedata.normalize("NFKC", char)
        parts.append(folded)
        origin.extend([i] * len(folded))
    return "".join(parts), origin


def redact(text: str | None) -> str | None:
    """``text`` with e-mail addresses, phone numbers and identity card numbers replaced by
    ``[redacted]``."""
    if not text:
        return text
    # Dropped first, so a control character between digits cannot hide a number.
    text = xml_text(text)
    folded, origin = _compatible(text)
    spans = []
    for pattern in _PATTERNS:
        for match in pattern.finditer(folded):
            start, end = match.span()
            if origin is not None:
                start, end = origin[start], origin[end - 1] + 1
            spans.append((start, end))
    if not spans:
        return text
    out, kept = [], 0
    for start, end in sorted(spans):
        if start < kept:  # overlaps the previous match: widen it
            kept = max(kept, end)
            continue
        out += [text[kept:start], REDACTED]
        kept = end
    out.append(text[kept:])
    return "".join(out)
