"""Webhooks: case events POSTed, signed, to the systems of departments, regions or the city.

Endpoints are registered by administrators (``gridmgr webhooks add``, the admin API); the
deliveries are rows of ``notifications`` made and sent by ``gridmgr worker``
(``gridmgr.notify.engine``). See docs/notifications.md.
"""
