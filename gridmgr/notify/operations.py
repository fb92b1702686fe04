"""What people do about their messages: stop a case's messages, subscribe a browser to push."""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from sqlalchemy import text

from gridmgr.errors import Forbidden, InvalidInput
from gridmgr.extensions import db
from gridmgr.notify.messages import language_of
from gridmgr.notify.recipients import unsubscribe_signature
from gridmgr.people.models import User


def stop_messages(case_id: int, address: str, signature: str) -> None:
    """Stop every later message of ``case_id`` to ``address`` (the link of a message), and
    those still waiting; 403 ``bad_signature`` for a link not made by gridmgr. Commits."""
    if not (0 < case_id < 2**63) or not address or not hmac.compare_digest(
            unsubscribe_signature(case_id, address), signature or ""):
        raise Forbidden("This link to stop messages is not valid.", code="bad_signature")
    db.session.execute(text("""INSERT INTO notify_optouts (case_id, address)
        SELECT id, :address FROM cases WHERE id = :case_id ON CONFLICT DO NOTHING"""),
        {"case_id": case_id, "address": address})
    db.session.execute(text("""DELETE FROM notifications WHERE case_id = :case_id
        AND address = :address AND state = 'pending'"""),
        {"case_id": case_id, "address": address})
    db.session.commit()


def subscribe_push(user: User, endpoint: str, p256dh: str, auth: str,
                   language: str | None) -> int:
    """Keep a browser's push subscription for ``user`` (the same endpoint again replaces it);
    422 ``bad_subscription`` for an endpoint that is no https:// (or loopback http) URL."""
    parts = urlsplit(endpoint or "")
    loopback = parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")
    if not parts.hostname or not (parts.scheme == "https" or loopback):
        raise InvalidInput("A push subscription's endpoint is an https:// address.",
                           code="bad_subscription")
    from flask import current_app

    row = db.session.execute(text("""
        INSERT INTO push_subscriptions (user_id, endpoint, p256dh, auth, language)
        VALUES (:user, :endpoint, :p256dh, :auth, :language)
        ON CONFLICT (endpoint) DO UPDATE SET user_id = excluded.user_id,
            p256dh = excluded.p256dh, auth = excluded.auth, language = excluded.language
        RETURNING id"""), {"user": user.id, "endpoint": endpoint, "p256dh": p256dh,
                           "auth": auth, "language": language_of(
                               language, current_app.config["GRIDMGR_LANGUAGE"])})
    subscription_id = row.scalar_one()
    db.session.commit()
    return subscription_id


def unsubscribe_push(user: User, endpoint: str) -> int:
    """Forget ``user``'s subscription at ``endpoint``; how many were removed. Commits."""
    removed = db.session.execute(text("""DELETE FROM push_subscriptions
        WHERE user_id = :user AND endpoint = :endpoint"""),
        {"user": user.id, "endpoint": endpoint}).rowcount
    db.session.commit()
    return removed
