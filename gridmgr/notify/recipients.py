"""Who is told what about a case event, in which language, with which links.

Reporters (the first and every one who joined the case since: its followers) are told when
their case is filed, cancelled (with the reason, and the case that carries their report when
it was a duplicate), handled and closed (with the after-photo and the request to rate), at
the contact details of their report, else of their account; signed-in reporters also by Web
Push. Staff are told when a case is dispatched or escalated to them and when a request waits
for their approval. Which kinds are sent is configuration (``GRIDMGR_NOTIFY_REPORTERS``,
``GRIDMGR_NOTIFY_STAFF``); an address that used a message's link to stop a case's messages
gets none of that case.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote

from flask import current_app
from sqlalchemy import text

from gridmgr.extensions import db
from gridmgr.notify.messages import REQUESTS, language_of, render

# A step's action -> what its reporters are told.
REPORTER_KINDS = {"file": "filed", "cancel": "cancelled", "merge": "cancelled",
                  "handle": "handled", "close": "closed", "self_handle": "closed"}
APPROVAL_ACTIONS = {"extend_requested": "extend", "shelve_requested": "shelve"}


def unsubscribe_signature(case_id: int, address: str) -> str:
    """The signature in a message's link that stops ``address`` hearing of ``case_id``."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"{case_id}:{address}".encode(), hashlib.sha256).hexdigest()[:32]


def _enabled(setting: str) -> set[str]:
    return {k.strip() for k in (current_app.config.get(setting) or "").split(",") if k.strip()}


def messages_for(event: str, payload: dict) -> list[dict]:
    """The messages an outbox event calls for, as ``notifications`` rows (without state)."""
    if not event.startswith("case.") or "id" not in payload:
        return []
    action = payload.get("action")
    kind = REPORTER_KINDS.get(action)
    if action == "verify" and payload.get("state") == "cancelled":
        kind = "cancelled"
    messages = []
    if kind in _enabled("GRIDMGR_NOTIFY_REPORTERS"):
        messages += _to_reporters(kind, payload)
    staff_kind, users, extra = _staff_kind(event, action, payload)
    if staff_kind in _enabled("GRIDMGR_NOTIFY_STAFF") and users:
        messages += _to_staff(staff_kind, payload, users, extra)
    # A channel with no server configured sends nothing, rather than failing for days.
    config = current_app.config
    off = {"email"} if not config.get("GRIDMGR_SMTP_URL") else set()
    off |= {"sms"} if not config.get("GRIDMGR_SMS_GATEWAY_URL") else set()
    return [m for m in messages if m["channel"] not in off]


def _case(case_id: int):
    return db.session.execute(text("""
        SELECT c.id, c.code, c.deadline, c.grid_code, c.city_id, k.name_zh, k.name_en
        FROM cases c JOIN categories k ON k.id = c.category_id WHERE c.id = :id"""),
        {"id": case_id}).one_or_none()


def _base() -> str:
    return current_app.config["GRIDMGR_PUBLIC_URL"].rstrip("/")


def _fields(case, language: str, link: str) -> dict:
    return {"code": case.code, "link": link,
            "category": case.name_zh if language == "zh" else case.name_en,
            "deadline": case.deadline.isoformat(timespec="minutes") if case.deadline else "-"}


def _to_reporters(kind: str, payload: dict) -> list[dict]:
    case = _case(payload["id"])
    if case is None:
        return []
    default = current_app.config["GRIDMGR_LANGUAGE"]
    reporters = db.session.execute(text("""
        SELECT r.reporter_id,
               coalesce(r.contact_email, CASE WHEN u.role = 'citizen' THEN u.email END) AS email,
               coalesce(r.contact_phone, CASE WHEN u.role = 'citizen' THEN u.phone END) AS phone,
               r.attributes ->> 'language' AS language, u.role
        FROM reports r LEFT JOIN users u ON u.id = r.reporter_id AND u.is_active
        WHERE r.case_id = :id OR r.id = ANY(CAST(:moved AS bigint[])) ORDER BY r.id"""),
        # A merge moved the reports to the case that carries them: their reporters still hear.
        {"id": case.id, "moved": payload.get("merged_reports") or []}).all()
    stopped = set(db.session.execute(text(
        "SELECT address FROM notify_optouts WHERE case_id = :id"), {"id": case.id}).scalars())
    extra = _step_extra(kind, case)
    messages, seen = [], set()
    for reporter in reporters:
        language = language_of(reporter.language, default)
        # Signed-in reporters follow their case in the API; others through Open311.
        link = (f"{_base()}/api/v1/cases/{case.id}" if reporter.reporter_id
                else f"{_base()}/open311/v2/requests/{case.code}.json")
        targets = [("email", reporter.email), ("sms", reporter.phone)]
        if reporter.reporter_id and reporter.role == "citizen":
            targets += [("push", str(s)) for s in _push_subscriptions([reporter.reporter_id])]
        for channel, address in targets:
            if not address or (channel, address) in seen or address in stopped:
                continue
            seen.add((channel, address))
            messages.append(_message(channel, kind, address, case, language, link, extra))
    return messages


def _step_extra(kind: str, case) -> dict:
    """The reason of a cancellation (and the carrying case), the after-photo of a closing."""
    extra: dict = {}
    if kind == "cancelled":
        step = db.session.execute(text("""
            SELECT note, details FROM case_history WHERE case_id = :id AND to_state = 'cancelled'
            ORDER BY id DESC LIMIT 1"""), {"id": case.id}).one_or_none()
        extra["reason"] = (step.note if step else None) or "-"
        carrier_id = (step.details or {}).get("duplicate_of") if step else None
        if carrier_id:
            code = db.session.scalar(text("SELECT code FROM cases WHERE id = :id"),
                                     {"id": carrier_id})
            if code:
                extra["carrier"] = code
                extra["carrier_link"] = f"{_base()}/open311/v2/requests/{code}.json"
    if kind == "closed":
        photo = db.session.scalar(text("""
            SELECT sha256 FROM photos WHERE case_id = :id AND stage = 'after' AND public
            ORDER BY id DESC LIMIT 1"""), {"id": case.id})
        if photo:
            extra["photo"] = f"{_base()}/api/v1/photos/{photo}"
        extra["rate_link"] = f"{_base()}/api/v1/cases/{case.id}/rate"
    return extra


def _staff_kind(event: str, action: str | None, payload: dict) -> tuple[str | None, list, dict]:
    if event == "case.escalated" and payload.get("worker_id"):
        return "escalated", [payload["worker_id"]], {}
    if action in ("dispatch", "rework"):
        if payload.get("worker_id"):
            return "dispatched", [payload["worker_id"]], {}
        if payload.get("department_id"):
            return "dispatched", list(db.session.execute(text("""
                SELECT id FROM users WHERE department_id = :d AND role = 'department'
                  AND is_active"""), {"d": payload["department_id"]}).scalars()), {}
    if action in APPROVAL_ACTIONS:
        chiefs = db.session.execute(text("""
            SELECT u.id FROM users u LEFT JOIN regions g ON g.id = u.region_id
            WHERE u.role = 'duty_chief' AND u.is_active
              AND (g.id IS NULL OR :grid LIKE g.code || '%')"""),
            {"grid": payload.get("grid_code") or ""}).scalars()
        return "approval", list(chiefs), {"request": APPROVAL_ACTIONS[action]}
    return None, [], {}


def _to_staff(kind: str, payload: dict, user_ids: list[int], extra: dict) -> list[dict]:
    case = _case(payload["id"])
    if case is None:
        return []
    default = current_app.config["GRIDMGR_LANGUAGE"]
    link = f"{_base()}/api/v1/cases/{case.id}"
    users = db.session.execute(text(
        "SELECT id, email, phone, language FROM users WHERE id = ANY(:ids) AND is_active "
        "ORDER BY id"), {"ids": user_ids}).all()
    languages = {user.id: language_of(user.language, default) for user in users}
    messages = []
    targets = [(channel, address, user.id) for user in users
               for channel, address in (("email", user.email), ("sms", user.phone)) if address]
    targets += [("push", str(subscription), owner)
                for subscription, owner in _push_subscription_owners(user_ids)]
    for channel, address, user_id in targets:
        language = languages.get(user_id, default)
        fields = dict(extra)
        if "request" in fields:
            fields["request"] = REQUESTS[fields["request"]][language]
        messages.append(_message(channel, kind, address, case, language, link, fields))
    return messages


def _push_subscription_owners(user_ids: list[int]) -> list[tuple[int, int]]:
    """(subscription id, user id) of the users' Web Push subscriptions."""
    if not current_app.config["GRIDMGR_WEB_PUSH"]:
        return []
    return [tuple(row) for row in db.session.execute(text(
        "SELECT id, user_id FROM push_subscriptions WHERE user_id = ANY(:ids) ORDER BY id"),
        {"ids": user_ids})]


def _push_subscriptions(user_ids: list[int]) -> list[int]:
    if not current_app.config["GRIDMGR_WEB_PUSH"]:
        return []
    return list(db.session.execute(text(
        "SELECT id FROM push_subscriptions WHERE user_id = ANY(:ids) ORDER BY id"),
        {"ids": user_ids}).scalars())


def _message(channel: str, kind: str, address: str, case, language: str, link: str,
             extra: dict) -> dict:
    fields = {**_fields(case, language, link), **extra}
    if kind in REPORTER_KINDS.values():
        fields["unsubscribe"] = (
            f"{_base()}/api/v1/notify/unsubscribe?case={case.id}&to={quote(address, safe='')}"
            f"&sig={unsubscribe_signature(case.id, address)}")
    subject, body = render(kind, language, fields)
    links = {k: fields[k] for k in ("link", "unsubscribe", "photo", "rate_link", "carrier_link")
             if fields.get(k)}
    return {"channel": channel, "kind": kind, "address": address, "case_id": case.id,
            "language": language, "subject": subject, "body": body, "links": links}
