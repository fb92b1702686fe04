"""Telling people: e-mail, SMS and Web Push messages made from the outbox after commit.

``gridmgr worker`` reads the outbox (``gridmgr.notify.engine``), writes one row per message
and per webhook delivery, and sends them from a delivery loop of its own: a request never
waits for a gateway. See docs/notifications.md.
"""
