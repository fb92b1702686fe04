"""A real gridmgr server in a subprocess and real python-socketio clients, for live tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path

import engineio
import socketio

GRIDMGR = str(Path(sys.executable).parent / "gridmgr")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.02) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


class Server:
    """``gridmgr serve`` on a free port against the test database."""

    def __init__(self, app, home: Path, *, redis_url: str | None = None,
                 channel: str | None = None, extra_env: dict | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        home.mkdir(parents=True, exist_ok=True)
        (home / "config.py").write_text("RATELIMIT_ENABLED = False\n"
                                        "GRIDMGR_LIVE_POLL_SECONDS = 0.5\n")
        env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
        env.update({
            "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
            "SECRET_KEY": app.config["SECRET_KEY"],
            "GRIDMGR_HOME": str(home),
            "GRIDMGR_SOCKETIO_CHANNEL": channel or f"gridmgr-test-{uuid.uuid4().hex[:8]}",
        })
        if redis_url:
            env["REDIS_URL"] = redis_url
        env.update(extra_env or {})
        self.log = home / f"server-{self.port}.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen([GRIDMGR, "serve", "--port", str(self.port)],
                                            env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            # Importing the app takes seconds; on a machine busy with other work, far longer.
            started = wait_for(self._up, timeout=120)
        except RuntimeError:
            started = False
        if not started:
            self.stop()
            raise RuntimeError(f"server did not start; see {self.log}")

    def _up(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"server exited with {self.process.returncode}")
        try:
            with urllib.request.urlopen(self.url + "/api/v1/openapi.json", timeout=1):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def running_server(app, home: Path, **kwargs):
    server = Server(app, home, **kwargs)
    try:
        yield server
    finally:
        server.stop()


class _ArrivalOrderEngineIO(engineio.Client):
    """Hands each message to Socket.IO in the order it arrived, one after the other.

    python-engineio's client runs every incoming message in a thread of its own, so two
    events sent back to back may be recorded swapped (python-socketio#382); a browser's
    socket.io-client, like the wall, handles them in order."""

    def _trigger_event(self, event, *args, **kwargs):
        if event == "message":
            kwargs["run_async"] = False
        return super()._trigger_event(event, *args, **kwargs)


class _ArrivalOrderClient(socketio.Client):
    def _engineio_client_class(self):
        return _ArrivalOrderEngineIO


class LiveClient:
    """A python-socketio client on ``/live`` that records every event it receives, in the
    order the server sent them."""

    def __init__(self, url: str, token: str | None, since: int | None = None):
        self.events: list[tuple[str, dict]] = []
        self.lock = threading.Lock()
        self.sio = _ArrivalOrderClient(reconnection=False)
        self.sio.on("*", self._record, namespace="/live")
        auth = {} if token is None else {"token": token}
        if since is not None:
            auth["since"] = since
        self.sio.connect(url, namespaces=["/live"], auth=auth, transports=["websocket"],
                         wait_timeout=10)

    def _record(self, event, data):
        with self.lock:
            self.events.append((event, data))

    def named(self, name: str) -> list[dict]:
        with self.lock:
            return [data for event, data in self.events if event == name]

    def seqs(self) -> list[int]:
        with self.lock:
            return [data["seq"] for _, data in self.events if isinstance(data, dict)]

    def call(self, event: str, data=None):
        return self.sio.call(event, data, namespace="/live", timeout=10)

    def close(self) -> None:
        self.sio.disconnect()


def refusal(url: str, auth: dict) -> dict:
    """The ``connect_error`` data the server answers ``auth`` with (fails if it lets us in)."""
    refused: list = []
    sio = socketio.Client(reconnection=False)
    sio.on("connect_error", refused.append, namespace="/live")
    try:
        sio.connect(url, namespaces=["/live"], auth=auth, transports=["websocket"],
                    wait_timeout=10)
    except socketio.exceptions.ConnectionError:
        return refused[0]
    sio.disconnect()
    raise AssertionError("the server accepted the connection")


class PrivateRedis:
    """A throw-away ``redis-server`` on its own port that a test may stop and restart."""

    def __init__(self, home: Path):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.home = home
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        self.process = subprocess.Popen([binary, "--port", str(self.port), "--save", "",
                                         "--appendonly", "no", "--dir", str(self.home)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._up, timeout=10)

    def _up(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
