"""Live channel: the transactional outbox, its relay to Socket.IO and the ``/live`` namespace."""

from __future__ import annotations

from flask import Flask

from gridmgr.live.outbox import LiveEvent, publish

__all__ = ["LiveEvent", "init_app", "publish"]


def init_app(app: Flask) -> None:
    """Bind Socket.IO (threading mode; Redis message queue when ``REDIS_URL`` is set)."""
    from gridmgr.extensions import socketio
    from gridmgr.live import channel

    socketio.init_app(app, async_mode="threading", message_queue=app.config.get("REDIS_URL"),
                      channel=app.config.get("GRIDMGR_SOCKETIO_CHANNEL", "gridmgr-socketio"))
    channel.register(socketio)
