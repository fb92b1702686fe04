"""What public outputs do with free text.

Descriptions and the public notes of a case's history are public in Open311 practice, so the
GeoReport endpoint shows them; but a citizen often writes a phone number or an e-mail address
into a description. Before any free text leaves through a public interface, e-mail addresses
and phone numbers (Chinese mobile and landline numbers, and separated or ``+``-prefixed
international ones) are replaced by ``[redacted]``. Long digit runs without separators are
kept: they are case codes and region codes. The bulk open data carries no free text at all.
"""

from __future__ import annotations

import re

REDACTED = "[redacted]"

_PATTERNS = [
    re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),                       # e-mail
    re.compile(r"(?<![\d])(?:\+?86[\s-]?)?1[3-9]\d(?:[\s-]?\d{4}){2}(?!\d)"),  # CN mobile
    re.compile(r"(?<![\d])0\d{2,3}[\s-]?\d{7,8}(?!\d)"),               # CN landline
    re.compile(r"\+\d[\d\s().-]{6,}\d"),                                 # +international
    re.compile(r"(?<![\d])\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}(?!\d)"),      # 555-123-4567
]


def redact(text: str | None) -> str | None:
    """``text`` with e-mail addresses and phone numbers replaced by ``[redacted]``."""
    if not text:
        return text
    for pattern in _PATTERNS:
        text = pattern.sub(REDACTED, text)
    return text
