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

The other rules of the public side live here too, read by every public output (Open311, open
data and its dump, the tracking answer, a citizen's view of their own case):

* a citizen's report is published once the city has verified it (or filed it:
  ``GRIDMGR_PUBLISH_CITIZEN_REPORTS_FROM``), so a false or malicious report never reaches the
  public; a report cancelled before that is never published;
* a published point is rounded to ``GRIDMGR_PUBLIC_COORDINATE_DECIMALS`` decimals (4: about
  10 m), enough to find the problem, not the doorstep of who reported it;
* of a case's history the public sees the steps (action, states, time), never who took them
  or where they stood; of the notes only the reason a report was cancelled (redacted): every
  other note is written between staff and may name them.
"""

from __future__ import annotations

import re
import unicodedata

from flask import current_app

from gridmgr.opendata.writing import xml_text

REDACTED = "[redacted]"
# From which state on a citizen's report is published; the states of a case before it.
PUBLISH_FROM_STATES = {"reported": (), "verified": ("reported",),
                       "filed": ("reported", "verified")}

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


def public_decimals() -> int:
    """Decimals of a published longitude or latitude (``GRIDMGR_PUBLIC_COORDINATE_DECIMALS``)."""
    return int(current_app.config["GRIDMGR_PUBLIC_COORDINATE_DECIMALS"])


def public_coordinate(value: float | None) -> float | None:
    """A longitude or latitude as the public sees it: rounded to :func:`public_decimals`."""
    return None if value is None else round(value, public_decimals())


def unpublished_states() -> tuple[str, ...]:
    """The states in which a citizen's report is not published yet (a 500 for a setting
    gridmgr does not know, rather than publishing by mistake)."""
    setting = current_app.config["GRIDMGR_PUBLISH_CITIZEN_REPORTS_FROM"]
    if setting not in PUBLISH_FROM_STATES:
        raise ValueError(f"GRIDMGR_PUBLISH_CITIZEN_REPORTS_FROM is one of "
                         f"{', '.join(PUBLISH_FROM_STATES)}, not {setting!r}")
    return PUBLISH_FROM_STATES[setting]


def published_case_sql(alias: str) -> str:
    """SQL true for a case the public may see: not a citizen's report, or one past the states
    of :func:`unpublished_states` (a cancelled one only when it had passed them first)."""
    hidden = unpublished_states()
    if not hidden:
        return "true"
    states = ", ".join(f"'{s}'" for s in hidden)
    reached = ", ".join(f"'{s}'" for s in ("verified", "filed") if s not in hidden)
    return (f"({alias}.source <> 'citizen' OR ({alias}.state NOT IN ({states}, 'cancelled')) "
            f"OR ({alias}.state = 'cancelled' AND EXISTS (SELECT FROM case_history ph "
            f"WHERE ph.case_id = {alias}.id AND ph.to_state IN ({reached}))))")


def public_note(to_state: str, note: str | None) -> str | None:
    """A step's note as the public reads it: the reason of a cancellation, redacted; None for
    the notes of every other step."""
    return redact(note) if to_state == "cancelled" else None


def public_step(step, viewer_id: int | None = None) -> dict:
    """One step of a case's history as the public sees it: what happened and when, the public
    note; no actor (but the viewer themself), no place, no details but the case carrying a
    cancelled duplicate."""
    details = step.details or {}
    return {"id": step.id, "actor_id": step.actor_id if viewer_id is not None
            and step.actor_id == viewer_id else None,
            "actor_role": step.actor_role, "action": step.action,
            "from_state": step.from_state, "to_state": step.to_state,
            "at": step.at.isoformat() if step.at else None,
            "note": public_note(step.to_state, step.note),
            "details": {"duplicate_of": details["duplicate_of"]}
            if details.get("duplicate_of") else {}}
