"""``gridmgr demo serve``: the demo city served as production serves it, with everything that
moves by itself.

Three processes, stopped together:

- the server: gunicorn with one gevent-websocket worker (Flask-SocketIO's documented
  production server for gevent), holding the API, Open311, the wall and the live channel;
- the background worker (``gridmgr demo worker``: ``gridmgr worker`` with :data:`SETTINGS`):
  automatic dispatch, acknowledgement timeouts and escalation (督办), clock colours;
- this process: it starts both, stops them with SIGTERM on its own SIGTERM or Ctrl-C (or
  when one of them ends), and meanwhile plays the inspectors' phones and the operator's desk
  (``gridmgr.demo.simulation``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

from flask import Flask

# The demo's settings, each used unless GRIDMGR_HOME/config.py sets it: a dispatch nobody
# accepts within 3 minutes is escalated, community → street → district.
SETTINGS = {"GRIDMGR_ACCEPT_LIMIT": {"amount": 0.05, "unit": "urgent_hours"}}
# Seconds gunicorn lets open connections (the walls' WebSockets) finish when stopped, and that
# this process then waits for each child before killing it.
GRACEFUL_SECONDS = 3
STOP_WAIT_SECONDS = 15


def apply_settings(app: Flask) -> None:
    """Give ``app`` the demo's :data:`SETTINGS` it has no value of its own for."""
    for key, value in SETTINGS.items():
        app.config.setdefault(key, value)


def create_demo_app() -> Flask:
    """The app in gunicorn's gevent-websocket worker, which monkey-patched the process before
    loading it: psycopg2 is made cooperative, then the app built and its live relay started."""
    from gevent import monkey
    from psycogreen.gevent import patch_psycopg

    if not monkey.is_module_patched("socket"):
        raise RuntimeError("create_demo_app runs in gunicorn's gevent-websocket worker")
    patch_psycopg()
    from gridmgr import create_app
    from gridmgr.serving import settle_memory, start_relay

    app = create_app()
    apply_settings(app)
    start_relay(app)
    settle_memory()
    return app


def server_command(host: str, port: int) -> list[str]:
    """gunicorn with one gevent-websocket worker (Socket.IO keeps a client in one process)."""
    return [sys.executable, "-m", "gunicorn", "--bind", f"{host}:{port}", "--workers", "1",
            "--worker-class", "geventwebsocket.gunicorn.workers.GeventWebSocketWorker",
            "--graceful-timeout", str(GRACEFUL_SECONDS), "--log-level", "warning",
            "gridmgr.demo.serving:create_demo_app()"]


def worker_command() -> list[str]:
    """The background worker with the demo's settings."""
    return [sys.executable, "-m", "gridmgr.cli", "demo", "worker"]


def run_demo(host: str, port: int, simulate=None) -> int:
    """Start the server and the worker, run ``simulate(stop)`` here until SIGTERM, Ctrl-C or a
    child's end, then stop both children with SIGTERM and wait for them; the exit status (0
    when asked to stop)."""
    stop = threading.Event()
    asked = threading.Event()

    def ask_to_stop(*_) -> None:
        asked.set()
        stop.set()

    previous = {sig: signal.signal(sig, ask_to_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    server_env = {**os.environ, "GRIDMGR_ASYNC_MODE": "gevent"}
    # In process groups of their own: a terminal's Ctrl-C reaches this process only, which
    # stops the children gracefully (gunicorn's own Ctrl-C exit is abrupt and noisy).
    children = {"server": subprocess.Popen(server_command(host, port), env=server_env,
                                           process_group=0),
                "worker": subprocess.Popen(worker_command(), process_group=0)}
    threading.Thread(target=_watch, args=(children, stop), daemon=True).start()
    try:
        print(f"gridmgr demo on http://{host}:{port}: server pid {children['server'].pid} "
              f"(gunicorn, gevent-websocket), worker pid {children['worker'].pid}; "
              "Ctrl-C stops both", flush=True)
        if simulate is not None:
            simulate(stop)
        stop.wait()
    finally:
        stop.set()
        _stop_children(list(children.values()))
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0 if asked.is_set() else 1


def _watch(children: dict[str, subprocess.Popen], stop: threading.Event) -> None:
    """Stop everything when one child ends by itself (a port in use, the database gone)."""
    while not stop.wait(0.5):
        for name, child in children.items():
            if child.poll() is not None:
                print(f"the demo's {name} (pid {child.pid}) ended with {child.returncode}; "
                      "stopping the demo", file=sys.stderr, flush=True)
                stop.set()
                return


def _stop_children(children: list[subprocess.Popen]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout=STOP_WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
