"""Registering webhook endpoints, choosing what each receives, delivering and replaying.

An endpoint of a department receives the events of the cases dispatched to it, one of a
region the events of the cases in it, one of neither every case event. Each delivery carries
the outbox sequence number of its event; an endpoint's deliveries are sent one at a time in
sequence order and each is retried until the endpoint acknowledges it (any 2xx), so a
receiver gets every event once and in order. After ``GRIDMGR_WEBHOOK_PAUSE_AFTER`` failed
attempts in a row the endpoint is paused and its administrators are told; its deliveries wait
until it is resumed.
"""

from __future__ import annotations

import json
import time
from urllib.parse import urlsplit

import requests
from flask import current_app
from sqlalchemy import select, text

from gridmgr.errors import Conflict, InvalidInput, NotFound
from gridmgr.extensions import db
from gridmgr.grids.reading import find_region
from gridmgr.people.models import Department, User
from gridmgr.webhooks.models import WebhookEndpoint
from gridmgr.webhooks.signing import sign

EVENTS = ("case.created", "case.dispatched", "case.updated", "case.clock", "case.escalated")
MIN_SECRET = 16


def describe(endpoint: WebhookEndpoint) -> dict:
    """An endpoint as the admin API and the CLI show it (never its secret)."""
    return {"id": endpoint.id, "url": endpoint.url, "events": list(endpoint.events),
            "department_id": endpoint.department_id, "region_code": endpoint.region_code,
            "state": endpoint.state, "failures": endpoint.failures,
            "created_at": endpoint.created_at.isoformat() if endpoint.created_at else None}


def add_endpoint(url: str, secret: str, events: list[str] | str, department: str | None = None,
                 region: str | None = None, actor: User | None = None) -> WebhookEndpoint:
    """Register an endpoint; 422 for a bad URL, a short secret, an unknown event or two
    scopes, 404 for an unknown department or region. Commits."""
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("A webhook URL is an http:// or https:// address with a host.",
                           code="bad_webhook_url")
    if not secret or len(secret) < MIN_SECRET:
        raise InvalidInput(f"A webhook secret has at least {MIN_SECRET} characters.",
                           code="weak_webhook_secret")
    wanted = _events(events)
    if department and region:
        raise InvalidInput("An endpoint is for a department or a region, not both.",
                           code="two_scopes")
    endpoint = WebhookEndpoint(url=url, secret=secret, events=wanted, state="active",
                               failures=0, created_by=actor.id if actor else None)
    if department:
        found = db.session.scalar(select(Department).where(
            Department.id == int(department) if department.isdigit()
            else Department.name == department))
        if found is None:
            raise NotFound(f"No department is named {department!r:.60}.",
                           code="department_not_found")
        endpoint.department_id = found.id
    if region:
        find_region(region)
        endpoint.region_code = region
    db.session.add(endpoint)
    db.session.commit()
    return endpoint


def _events(events: list[str] | str) -> list[str]:
    names = [e.strip() for e in (events.split(",") if isinstance(events, str) else events or [])
             if isinstance(e, str) and e.strip()]
    if not names:
        raise InvalidInput(f"Name the events to receive: some of {', '.join(EVENTS)}, or *.",
                           code="events_required")
    unknown = [e for e in names if e != "*" and e not in EVENTS]
    if unknown:
        raise InvalidInput(f"Unknown event {unknown[0]!r:.40}; use some of {', '.join(EVENTS)}, "
                           "or *.", code="unknown_event")
    return sorted(set(names))


def endpoint_by_id(endpoint_id: int) -> WebhookEndpoint:
    endpoint = db.session.get(WebhookEndpoint, endpoint_id) if 0 < endpoint_id < 2**31 else None
    if endpoint is None:
        raise NotFound(f"No webhook endpoint has the id {endpoint_id}.",
                       code="webhook_not_found")
    return endpoint


def set_state(endpoint_id: int, state: str) -> WebhookEndpoint:
    """Pause or resume an endpoint (resuming starts its failure count again). Commits."""
    endpoint = endpoint_by_id(endpoint_id)
    endpoint.state = state
    endpoint.failures = 0 if state == "active" else endpoint.failures
    endpoint.paused_at = db.func.now() if state == "paused" else None
    if state == "active":
        db.session.execute(text("""UPDATE notifications SET next_at = now()
            WHERE endpoint_id = :id AND state = 'pending'"""), {"id": endpoint_id})
    db.session.commit()
    return endpoint


def remove_endpoint(endpoint_id: int) -> None:
    """Forget an endpoint and its deliveries. Commits."""
    db.session.delete(endpoint_by_id(endpoint_id))
    db.session.commit()


def replay(endpoint_id: int, from_seq: int) -> int:
    """Deliver again every kept event from sequence ``from_seq`` on that the endpoint
    receives, in order; returns how many. Commits."""
    endpoint = endpoint_by_id(endpoint_id)
    if from_seq < 1:
        raise InvalidInput("A sequence number is 1 or more.", code="bad_sequence")
    oldest = db.session.scalar(text("SELECT min(seq) FROM live_events"))
    if oldest is None or from_seq < oldest:
        raise Conflict(f"The outbox keeps events from sequence {oldest or 'none'} on; "
                       f"{from_seq} is no longer kept.", code="sequence_not_kept", oldest=oldest)
    rows = db.session.execute(text("""SELECT seq, event, payload, rooms FROM live_events
        WHERE seq >= :seq ORDER BY seq"""), {"seq": from_seq}).all()
    count = 0
    for row in rows:
        for delivery in deliveries_for([endpoint], row.seq, row.event, row.payload, row.rooms):
            insert_delivery(delivery)
            count += 1
    db.session.commit()
    return count


def endpoints_for_fan_out() -> list[WebhookEndpoint]:
    return list(db.session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)))


def deliveries_for(endpoints, seq: int, event: str, payload: dict,
                   rooms: list[str]) -> list[dict]:
    """The deliveries of one outbox event: one per endpoint that wants it."""
    if event not in EVENTS:
        return []
    body = json.dumps({"seq": seq, "event": event, "data": payload}, ensure_ascii=False,
                      separators=(",", ":"), sort_keys=True)
    out = []
    for endpoint in endpoints:
        if "*" not in endpoint.events and event not in endpoint.events:
            continue
        if endpoint.department_id and f"department:{endpoint.department_id}" not in rooms:
            continue
        if endpoint.region_code and f"region:{endpoint.region_code}" not in rooms:
            continue
        out.append({"channel": "webhook", "kind": event, "address": endpoint.url,
                    "case_id": payload.get("id"), "endpoint_id": endpoint.id, "event_seq": seq,
                    "language": "en", "subject": None, "body": body, "links": {}})
    return out


def insert_delivery(row: dict) -> None:
    """Queue one message or delivery (webhook deliveries are never given up)."""
    db.session.execute(text("""
        INSERT INTO notifications (channel, kind, address, case_id, endpoint_id, event_seq,
                                   language, subject, body, links, give_up_at)
        VALUES (:channel, :kind, :address, :case_id, :endpoint_id, :event_seq, :language,
                :subject, :body, CAST(:links AS jsonb),
                CASE WHEN :channel = 'webhook' THEN NULL
                     ELSE now() + make_interval(secs => :give_up) END)"""), {
        "endpoint_id": None, "event_seq": None, **row, "links": json.dumps(row["links"]),
        "give_up": current_app.config["GRIDMGR_NOTIFY_GIVE_UP_SECONDS"]})


def post_delivery(endpoint, delivery_id: int, seq: int, event: str, body: str) -> str | None:
    """POST one signed delivery; None when acknowledged (2xx), else what went wrong."""
    raw = body.encode()
    stamp = int(time.time())
    headers = {"Content-Type": "application/json", "User-Agent": "gridmgr-webhooks",
               "X-Gridmgr-Event": event, "X-Gridmgr-Sequence": str(seq),
               "X-Gridmgr-Delivery": str(delivery_id), "X-Gridmgr-Timestamp": str(stamp),
               "X-Gridmgr-Signature": sign(endpoint.secret, stamp, raw)}
    try:
        response = requests.post(endpoint.url, data=raw, headers=headers, allow_redirects=False,
                                 timeout=current_app.config["GRIDMGR_NOTIFY_TIMEOUT_SECONDS"])
    except requests.RequestException as error:
        return f"{type(error).__name__}: {error}"[:500]
    if 200 <= response.status_code < 300:
        return None
    return f"HTTP {response.status_code}: {response.text[:200]}"


def require_city_administrator(user: User | None) -> None:
    """Endpoints receive cases beyond any one region's staff: only a city-wide administrator
    registers or changes them (403 otherwise)."""
    from gridmgr.errors import Forbidden

    if user is None or user.role != "admin" or user.region_id is not None:
        raise Forbidden("Only a city-wide administrator manages webhooks.",
                        code="forbidden")
