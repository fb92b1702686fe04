"""From the outbox to the recipients: fan-out, then delivery with retries.

**Fan-out.** The worker numbers committed outbox rows (as the relays do:
``gridmgr.live.outbox.sequence_pending``), then, holding the ``notify_cursor`` row
(``FOR UPDATE SKIP LOCKED``: one worker at a time, others go on delivering), reads the events
after the cursor in sequence order, writes one ``notifications`` row per message and webhook
delivery they call for, and moves the cursor, in one transaction: a step that rolled back was
never in the outbox, and a worker that dies mid-way leaves the events for the next pass.

**Delivery.** Due messages are claimed ``FOR UPDATE SKIP LOCKED`` and sent (one SMTP session
per pass); one not accepted is tried again after base × 2^attempts seconds
(``GRIDMGR_NOTIFY_RETRY_SECONDS``, at most ``GRIDMGR_NOTIFY_RETRY_MAX_SECONDS``) until
``GRIDMGR_NOTIFY_GIVE_UP_SECONDS`` after it was made; then it is ``failed``
(``gridmgr notify failures``) until sent again (``gridmgr notify resend``). Webhook
deliveries go endpoint by endpoint, in sequence order (``gridmgr.webhooks.operations``).
"""

from __future__ import annotations

import logging
import threading

from flask import Flask, current_app
from sqlalchemy import text

from gridmgr.extensions import db
from gridmgr.live.outbox import sequence_pending
from gridmgr.notify import senders
from gridmgr.notify.messages import render
from gridmgr.notify.recipients import messages_for
from gridmgr.webhooks import operations as webhooks

log = logging.getLogger(__name__)
FAN_OUT_BATCH = 500
DELIVERY_BATCH = 100

_RETRY = """attempts = attempts + 1, last_error = :error,
    next_at = now() + make_interval(secs => least(:max, :base * power(2, attempts)))"""


def fan_out(limit: int = FAN_OUT_BATCH) -> int:
    """Turn the outbox events after the cursor into notification rows; how many events."""
    _number_outbox()
    # The migration made the row; an emptied table starts again from the outbox's beginning.
    db.session.execute(text("""INSERT INTO notify_cursor (name, seq) VALUES ('outbox', 0)
        ON CONFLICT (name) DO NOTHING"""))
    cursor = db.session.execute(text("""SELECT seq FROM notify_cursor WHERE name = 'outbox'
        FOR UPDATE SKIP LOCKED""")).scalar()
    if cursor is None:
        db.session.rollback()
        return 0
    events = db.session.execute(text("""SELECT seq, event, payload, rooms FROM live_events
        WHERE seq > :seq ORDER BY seq LIMIT :n"""), {"seq": cursor, "n": limit}).all()
    if not events:
        db.session.rollback()
        return 0
    endpoints = webhooks.endpoints_for_fan_out()
    for event in events:
        for row in messages_for(event.event, event.payload):
            webhooks.insert_delivery(row)
        for row in webhooks.deliveries_for(endpoints, event.seq, event.event, event.payload,
                                           event.rooms):
            webhooks.insert_delivery(row)
    db.session.execute(text("UPDATE notify_cursor SET seq = :seq WHERE name = 'outbox'"),
                       {"seq": events[-1].seq})
    db.session.commit()
    return len(events)


def _number_outbox() -> None:
    """Give committed outbox rows their sequence numbers, as a relay would (none may run)."""
    connection = db.engine.raw_connection()
    try:
        connection.driver_connection.autocommit = True
        with connection.cursor() as cursor:
            sequence_pending(cursor)
    finally:
        connection.driver_connection.autocommit = False
        connection.close()


def deliver_due(limit: int = DELIVERY_BATCH) -> int:
    """Send due messages and webhook deliveries; how many were tried."""
    return _deliver_messages(limit) + _deliver_webhooks(limit)


def _retry_params(error: str) -> dict:
    config = current_app.config
    return {"error": error[:2000], "base": config["GRIDMGR_NOTIFY_RETRY_SECONDS"],
            "max": config["GRIDMGR_NOTIFY_RETRY_MAX_SECONDS"]}


def _deliver_messages(limit: int) -> int:
    rows = db.session.execute(text("""
        SELECT id, channel, kind, address, language, subject, body, links FROM notifications
        WHERE state = 'pending' AND endpoint_id IS NULL AND next_at <= now()
        ORDER BY next_at, id LIMIT :n FOR UPDATE SKIP LOCKED"""), {"n": limit}).all()
    if not rows:
        db.session.rollback()
        return 0
    mailer = senders.Mailer()
    try:
        for row in rows:
            try:
                if row.channel == "email":
                    mailer.send(row)
                elif row.channel == "sms":
                    senders.send_sms(row)
                else:
                    senders.send_push(row)
            except senders.SendError as error:
                db.session.execute(text(f"""UPDATE notifications SET {_RETRY},
                    state = CASE WHEN now() >= give_up_at THEN 'failed' ELSE 'pending' END
                    WHERE id = :id"""), {"id": row.id, **_retry_params(str(error))})
            else:
                db.session.execute(text("""UPDATE notifications SET state = 'sent',
                    sent_at = now(), attempts = attempts + 1 WHERE id = :id"""), {"id": row.id})
    finally:
        mailer.close()
    db.session.commit()
    return len(rows)


def _deliver_webhooks(limit: int) -> int:
    tried, after = 0, 0
    pause_after = current_app.config["GRIDMGR_WEBHOOK_PAUSE_AFTER"]
    while True:
        endpoint = db.session.execute(text("""
            SELECT e.id, e.url, e.secret, e.failures, e.created_by FROM webhook_endpoints e
            WHERE e.id > :after AND e.state = 'active' AND EXISTS (
                SELECT FROM notifications n WHERE n.endpoint_id = e.id AND n.state = 'pending'
                  AND n.next_at <= now())
            ORDER BY e.id LIMIT 1 FOR UPDATE SKIP LOCKED"""), {"after": after}).one_or_none()
        if endpoint is None:
            db.session.rollback()
            return tried
        after = endpoint.id
        rows = db.session.execute(text("""
            SELECT id, event_seq, kind, body, next_at <= now() AS due FROM notifications
            WHERE endpoint_id = :id AND state = 'pending'
            ORDER BY event_seq, id LIMIT :n"""), {"id": endpoint.id, "n": limit}).all()
        failures = endpoint.failures
        for row in rows:
            if not row.due:  # the oldest waits for its retry: the later ones wait behind it
                break
            tried += 1
            error = webhooks.post_delivery(endpoint, row.id, row.event_seq, row.kind, row.body)
            if error is None:
                failures = 0
                db.session.execute(text("""UPDATE notifications SET state = 'sent',
                    sent_at = now(), attempts = attempts + 1 WHERE id = :id"""), {"id": row.id})
                continue
            failures += 1
            db.session.execute(text(f"UPDATE notifications SET {_RETRY} WHERE id = :id"),
                               {"id": row.id, **_retry_params(error)})
            if failures >= pause_after:
                db.session.execute(text("""UPDATE webhook_endpoints SET state = 'paused',
                    paused_at = now() WHERE id = :id"""), {"id": endpoint.id})
                _tell_admins_paused(endpoint)
                log.warning("webhook %s paused after %s failures", endpoint.url, failures)
            break
        db.session.execute(text("UPDATE webhook_endpoints SET failures = :f WHERE id = :id"),
                           {"f": failures, "id": endpoint.id})
        db.session.commit()


def failures(limit: int = 100) -> list[dict]:
    """Messages given up, newest first."""
    rows = db.session.execute(text("""
        SELECT n.id, n.channel, n.kind, n.address, n.attempts, n.last_error, n.created_at,
               c.code AS case_code
        FROM notifications n LEFT JOIN cases c ON c.id = n.case_id
        WHERE n.state = 'failed' ORDER BY n.id DESC LIMIT :n"""), {"n": limit}).mappings()
    return [dict(row) for row in rows]


def resend(ids: list[int] | None = None) -> int:
    """Send given-up messages again (``ids``, or every one), with a fresh give-up time."""
    count = db.session.execute(text("""
        UPDATE notifications SET state = 'pending', next_at = now(), attempts = 0,
            give_up_at = now() + make_interval(secs => :give_up)
        WHERE state = 'failed' AND (CAST(:ids AS bigint[]) IS NULL OR id = ANY(:ids))"""),
        {"ids": ids, "give_up": current_app.config["GRIDMGR_NOTIFY_GIVE_UP_SECONDS"]}).rowcount
    db.session.commit()
    return count


def run_once() -> int:
    """One pass: fan out what the outbox holds, then deliver what is due."""
    return fan_out() + deliver_due()


def work(app: Flask, stop: threading.Event) -> None:
    """The delivery loop of ``gridmgr worker``: a pass, then a short wait when idle."""
    with app.app_context():
        poll = float(app.config["GRIDMGR_NOTIFY_POLL_SECONDS"])
        while not stop.is_set():
            try:
                if run_once() == 0:
                    stop.wait(poll)
            except Exception:  # the database or a gateway may be restarting: carry on
                db.session.rollback()
                log.exception("notification pass failed; retrying in %.1f s", poll)
                stop.wait(poll)
            finally:
                db.session.remove()


def start(app: Flask, stop: threading.Event) -> threading.Thread:
    """Start the delivery loop beside the worker's jobs."""
    thread = threading.Thread(target=work, args=(app, stop), name="gridmgr-notify",
                              daemon=True)
    thread.start()
    return thread


def _tell_admins_paused(endpoint) -> None:
    """Queue an e-mail to the endpoint's creator and the city-wide administrators."""
    admins = db.session.execute(text("""
        SELECT DISTINCT email FROM users
        WHERE is_active AND email IS NOT NULL
          AND (id = :creator OR (role = 'admin' AND region_id IS NULL))"""),
        {"creator": endpoint.created_by}).scalars()
    language = current_app.config["GRIDMGR_LANGUAGE"]
    subject, body = render("endpoint_paused", language,
                           {"url": endpoint.url, "endpoint_id": endpoint.id})
    for email in admins:
        webhooks.insert_delivery({"channel": "email", "kind": "endpoint_paused",
                                  "address": email, "case_id": None, "language": language,
                                  "subject": subject, "body": body, "links": {}})
