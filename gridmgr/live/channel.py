"""The ``/live`` Socket.IO namespace: authenticate on connect, put the client in its rooms,
replay what it missed, and let it join or leave the rooms the policy allows.

Connect with ``auth={"token": <access token>, "since": <last seq>}``. A refused connection
carries ``{"message": <sentence>, "data": {"code": <code>}}`` (``token_missing``,
``token_invalid``, ``token_expired``, ``token_revoked``).

A connection lasts only as long as its token and its user's access: when either changes, the
relay of each process calls :func:`check_connections`, which sends ``session.ended
{code, message}`` to the connections that no longer hold and disconnects them.
"""

from __future__ import annotations

from typing import NamedTuple

from flask import current_app, request
from flask_socketio import ConnectionRefusedError, Namespace, join_room, leave_room, rooms
from sqlalchemy import text

from gridmgr.errors import DomainError
from gridmgr.extensions import db, socketio
from gridmgr.live.relay import NAMESPACE, event_data, relay
from gridmgr.live.rooms import default_rooms, may_join
from gridmgr.people.models import User
from gridmgr.people.tokens import decode_token, user_for_claims

REPLAY_BATCH = 500


class _Connection(NamedTuple):
    """Who a connection of this process belongs to, with what token, chosen rooms by what."""

    user_id: int
    token: str
    access: tuple


# Connections of this process by Socket.IO session id: for join checks without a token per
# message, and for :func:`check_connections`.
_connections: dict[str, _Connection] = {}


class LiveNamespace(Namespace):
    """Handlers of ``/live``."""

    def on_connect(self, auth=None):
        auth = auth if isinstance(auth, dict) else {}
        since = auth.get("since")
        if since is not None and (isinstance(since, bool) or not isinstance(since, int)
                                  or since < 0):
            raise ConnectionRefusedError("since must be a non-negative event sequence number.",
                                         {"code": "invalid_since"})
        relay.start(current_app._get_current_object())
        if since is not None:
            # A client coming from another process may be ahead of this relay by a few
            # events: let the relay catch up first, or they would reach the client twice.
            relay.caught_up(since, timeout=2.0)
        sid = request.sid
        try:
            # The token is checked under the relay's lock, which the relay holds while it
            # handles access changes: a change committed before this check is seen by it, one
            # handled after finds this connection registered.
            with relay.lock:
                token = auth.get("token")
                try:
                    user = user_for_claims(decode_token(token, kind="access"))
                except DomainError as error:
                    raise ConnectionRefusedError(error.message, {"code": error.code}) from None
                _connections[sid] = _Connection(user.id, token, _access_of(user))
                joined = default_rooms(user)
                for room in joined:
                    join_room(room)
                if since is not None:
                    _replay(sid, joined, since, relay.delivered)
        finally:
            db.session.remove()

    def on_disconnect(self, reason=None):
        _connections.pop(request.sid, None)

    def on_join(self, data):
        """Join ``{"room": name}`` when the policy allows it; the ack says which."""
        room = _room_of(data)
        user = _user_of(request.sid)
        try:
            if user is None or room is None or not may_join(user, room):
                return {"ok": False, "error": {
                    "code": "forbidden",
                    "message": "Your role and scope do not cover this channel."}}
            join_room(room)
            return {"ok": True, "room": room}
        finally:
            db.session.remove()

    def on_leave(self, data):
        """Leave ``{"room": name}``; the ack lists the rooms still joined."""
        room = _room_of(data)
        if room is not None and room != request.sid:
            leave_room(room)
        return {"ok": True, "rooms": sorted(r for r in rooms() if r != request.sid)}

    def on_rooms(self, data=None):
        """The rooms this connection listens to."""
        return {"rooms": sorted(r for r in rooms() if r != request.sid)}


def _replay(sid: str, joined: list[str], since: int, upto: int | None) -> None:
    """Emit to ``sid`` the events after ``since`` (up to ``upto``) addressed to its rooms."""
    if upto is None or since >= upto:
        return
    limit = int(current_app.config["GRIDMGR_LIVE_REPLAY_MAX"])
    missed, oldest = db.session.execute(text(
        "SELECT count(*) FILTER (WHERE seq > :since AND rooms && CAST(:rooms AS text[])), "
        "min(seq) FROM live_events WHERE seq <= :upto"),
        {"since": since, "upto": upto, "rooms": joined}).one()
    if missed > limit or (oldest is not None and oldest > since + 1):
        # Too much to replay, or already pruned: the client reloads its state, then follows
        # from ``upto``.
        socketio.emit("replay.truncated", {"since": since, "seq": upto, "missed": missed},
                      to=sid, namespace=NAMESPACE, ignore_queue=True)
        return
    after = since
    while True:
        rows = db.session.execute(text(
            "SELECT seq, event, payload FROM live_events WHERE seq > :after AND seq <= :upto "
            "AND rooms && CAST(:rooms AS text[]) ORDER BY seq LIMIT :batch"),
            {"after": after, "upto": upto, "rooms": joined, "batch": REPLAY_BATCH}).all()
        for seq, event, payload in rows:
            socketio.emit(event, event_data(seq, payload), to=sid, namespace=NAMESPACE,
                          ignore_queue=True)
        if len(rows) < REPLAY_BATCH:
            return
        after = rows[-1][0]


def check_connections(user_id: int) -> None:
    """End this process's connections of ``user_id`` whose token no longer holds or whose
    user's role, scope or department changed since they connected (they may connect again)."""
    for sid, connection in list(_connections.items()):
        if connection.user_id != user_id:
            continue
        try:
            user = user_for_claims(decode_token(connection.token, kind="access"))
            ended = None if _access_of(user) == connection.access else (
                "access_changed", "Your role, scope or department changed; connect again.")
        except DomainError as error:
            ended = (error.code, error.message)
        if ended is not None:
            _connections.pop(sid, None)
            socketio.emit("session.ended", {"code": ended[0], "message": ended[1]}, to=sid,
                          namespace=NAMESPACE, ignore_queue=True)
            socketio.server.disconnect(sid, namespace=NAMESPACE, ignore_queue=True)
    db.session.remove()


def _access_of(user: User) -> tuple:
    """What a connection's rooms were chosen by."""
    return (user.role, user.region_id, user.city_id, user.department_id)


def _room_of(data) -> str | None:
    room = data.get("room") if isinstance(data, dict) else data
    return room if isinstance(room, str) and ":" in room and len(room) <= 64 else None


def _user_of(sid: str) -> User | None:
    connection = _connections.get(sid)
    return db.session.get(User, connection.user_id) if connection is not None else None


def register(socketio) -> None:
    """Add the ``/live`` handlers to ``socketio`` once (create_app may run many times)."""
    if not any(h.namespace == NAMESPACE for h in socketio.namespace_handlers):
        socketio.on_namespace(LiveNamespace(NAMESPACE))
