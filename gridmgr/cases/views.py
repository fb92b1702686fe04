"""What of a case each viewer sees: the decision and the views, defined once.

* ``staff`` (staff who may see the case): all of it, the history with who, where and their
  notes, every photo with its original, and reporters' contact details for who may see
  private details.
* ``reporter`` (a citizen with a report on the case, first or joined; a member of staff who
  reported a case outside what their role and scope let them see): their own reports in
  full, and the public view of the rest.

The public view is what the city publishes of a case through Open311 and open data, by the
rules of :mod:`gridmgr.opendata.redaction`: the description with e-mail addresses and phone
numbers redacted, the point rounded as every public output rounds it, the steps of the
timeline without who took them (beyond the viewer), their details or on-site points, with the
public notes only, and the public copies of public photos. No staff id, no other
reporter's identity, contact or report, no original photo but the viewer's own uploads.
"""

from __future__ import annotations

from collections.abc import Iterable

from gridmgr.opendata.redaction import public_coordinate, public_step, redact
from gridmgr.people.models import User
from gridmgr.people.policy import authorize, can

# Roles on the public's side of a case: their own reports, and the public view of the rest.
PUBLIC_SIDE_ROLES = frozenset({"citizen"})


def case_view(user: User | None, **target) -> str:
    """Which view of a case ``user`` gets, ``staff`` or ``reporter``; refused as
    :func:`gridmgr.people.policy.authorize` refuses ``case.view`` when neither."""
    authorize(user, "case.view", **target)
    if user.role in PUBLIC_SIDE_ROLES:
        return "reporter"
    # Staff who may see the case only because they reported it get the reporter's view.
    return "staff" if can(user, "case.view", **{**target, "reporter_id": None}) else "reporter"


def list_view(user: User) -> str:
    """The view of the cases in ``user``'s lists (who may list them is ``case.view``'s scope)."""
    return "reporter" if user.role in PUBLIC_SIDE_ROLES else "staff"


def may_fetch_photo(user: User | None, copy: str, *, public: bool, uploaded_by: int | None,
                    **target) -> bool:
    """Whether ``user`` may fetch a copy (``public``, ``thumb`` or ``original``) of a case's
    photo. The public copy and thumbnail of a public photo: anyone. The original (with its
    EXIF): its uploader, and staff who may see the case's private details. The copies of a
    photo kept private: its uploader, and staff who may see the case."""
    if copy != "original" and public:
        return True
    if user is None:
        return False
    if uploaded_by is not None and uploaded_by == user.id:
        return True
    if user.role in PUBLIC_SIDE_ROLES:
        return False
    # As staff only: having reported the case shows its public copies alone (the reporter's
    # view), as it does for a citizen.
    return can(user, "case.view_private" if copy == "original" else "case.view",
               **{**target, "reporter_id": None})


def public_summary(item: dict) -> dict:
    """A case's list shape as the public sees it: no staff id, the description redacted and
    the point rounded."""
    return {**item, "description": redact(item["description"]),
            "lon": public_coordinate(item["lon"]),
            "lat": public_coordinate(item["lat"]), "worker_id": None}


def staff_case(body: dict, photos: Iterable, history: Iterable,
               reports: list[dict] | None) -> dict:
    """The whole case for staff: ``body`` (summary and details) with every photo, every step
    and, when given, every report."""
    photos = list(photos)
    body = {**body, "photos": [_photo(p, original=True) for p in photos],
            "history": [_step(h, [p.sha256 for p in photos if p.history_id == h.id])
                        for h in history]}
    if reports is not None:
        body["reports"] = reports
    return body


def reporter_case(body: dict, photos: Iterable, history: Iterable, own_reports: list[dict],
                  viewer: User, case_reporter_id: int | None) -> dict:
    """A citizen's view of a case they reported or joined: their own reports in full, the
    public view of the rest (the rating's note only to the case's first reporter, who rates)."""
    own_report_ids = {r["id"] for r in own_reports}
    visible = [p for p in photos if p.public or p.uploaded_by == viewer.id]
    shown = {**public_summary(body), "handler_id": None, "verified_by_id": None,
             "pending_request": None,
             "rating_note": body["rating_note"] if case_reporter_id == viewer.id else None}
    for key in ("deadlines", "dispatched_at", "accepted_at", "handled_at", "closed_at",
                "paused_at", "return_count"):
        shown[key] = body[key]
    shown["photos"] = [{**_photo(p, original=p.uploaded_by == viewer.id),
                        "report_id": p.report_id if p.report_id in own_report_ids else None}
                       for p in visible]
    shown["history"] = [{
        **public_step(h, viewer.id), "lon": None, "lat": None,
        "photos": [p.sha256 for p in visible if p.history_id == h.id]} for h in history]
    shown["reports"] = own_reports
    return shown


def _photo(p, *, original: bool) -> dict:
    base = f"/api/v1/photos/{p.sha256}"
    return {"sha256": p.sha256, "mime": p.mime, "width": p.width, "height": p.height,
            "stage": p.stage, "history_id": p.history_id, "report_id": p.report_id,
            "url": base if p.public else None, "thumbnail_url": f"{base}?size=thumb",
            "original_url": f"{base}?size=original" if original else None}


def _step(h, photos: list[str]) -> dict:
    return {"id": h.id, "actor_id": h.actor_id, "actor_name": h.actor_name,
            "actor_role": h.actor_role, "action": h.action, "from_state": h.from_state,
            "to_state": h.to_state, "at": _iso(h.at), "lon": h.lon, "lat": h.lat, "note": h.note,
            "details": h.details, "photos": photos}


def _iso(value) -> str | None:
    return value.isoformat() if value else None
