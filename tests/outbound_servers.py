"""Real servers on the loopback address for the notification and webhook tests: an SMTP
server (aiosmtpd) and an HTTP receiver that records what it accepted."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SmtpSink:
    """An SMTP server that keeps every message it accepted; stop and start it at will."""

    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[email.message.EmailMessage] = []
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.messages.append(email.message_from_bytes(envelope.content,
                                                      policy=email.policy.default))
        return "250 OK"

    def start(self) -> None:
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def to(self, address: str) -> list:
        return [m for m in self.messages if m["To"] == address]


class HttpReceiver:
    """An HTTP server on loopback: ``answer(n, headers, body)`` gives the status of request n
    (counted from 1); every request is kept, and those answered 2xx are ``accepted``."""

    def __init__(self, answer=lambda n, headers, body: 200) -> None:
        self.answer = answer
        self.requests: list[tuple[dict, bytes]] = []
        self.accepted: list[tuple[dict, bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k: v for k, v in self.headers.items()}
                receiver.requests.append((headers, body))
                status = receiver.answer(len(receiver.requests), headers, body)
                if 200 <= status < 300:
                    receiver.accepted.append((headers, body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def accepted_json(self) -> list[dict]:
        return [json.loads(body) for _, body in self.accepted]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
