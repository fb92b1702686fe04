"""Live channel: the transactional outbox, its relay to Socket.IO and the ``/live`` namespace."""

from gridmgr.live.outbox import LiveEvent, publish

__all__ = ["LiveEvent", "publish"]
