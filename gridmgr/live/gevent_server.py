"""``gridmgr serve`` in gevent mode: one process, every client a greenlet.

Run only through :data:`BOOTSTRAP` (what ``gridmgr serve`` executes when
``GRIDMGR_ASYNC_MODE=gevent``): it monkey-patches the standard library and makes psycopg2
cooperative (psycogreen) before gridmgr, Flask or SQLAlchemy is imported, as gevent requires.
The relay's ``select()`` on its LISTEN connection and every query then yield to other greenlets.
"""

from __future__ import annotations

import os
import socket
import sys

BOOTSTRAP = ("import gevent; gevent.config.track_greenlet_tree = False; "
             "from gevent import monkey; monkey.patch_all(); "
             "from psycogreen.gevent import patch_psycopg; patch_psycopg(); "
             "from gridmgr.live.gevent_server import main; main()")


def command(host: str, port: int) -> list[str]:
    """The command line that serves on ``host:port`` in gevent mode."""
    return [sys.executable, "-c", BOOTSTRAP, host, str(port)]


def main() -> None:
    """Create the app in the patched process and serve it with gevent's WSGI server."""
    from gevent import monkey

    if not monkey.is_module_patched("socket"):
        raise SystemExit("gridmgr.live.gevent_server must be started through its BOOTSTRAP")
    host, port = sys.argv[1], int(sys.argv[2])
    os.environ["GRIDMGR_ASYNC_MODE"] = "gevent"
    from gridmgr import create_app
    from gridmgr.extensions import socketio
    from gridmgr.serving import settle_memory, start_relay

    app = create_app()
    if socketio.async_mode != "gevent":
        raise SystemExit(f"Socket.IO is in {socketio.async_mode} mode, expected gevent")
    start_relay(app)
    settle_memory()
    from gevent import pywsgi
    from geventwebsocket.handler import WebSocketHandler

    class Handler(WebSocketHandler):
        """gevent-websocket's handler with Nagle's algorithm off: small frames go at once."""

        def __init__(self, sock, *args, **kwargs):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            super().__init__(sock, *args, **kwargs)

    print(f"gridmgr serving on http://{host}:{port} (gevent)", flush=True)
    socketio.wsgi_server = pywsgi.WSGIServer((host, port), app, handler_class=Handler, log=None)
    socketio.wsgi_server.serve_forever()
