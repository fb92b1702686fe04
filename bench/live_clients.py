"""Phones for ``bench/live.py``: many ``/live`` clients in one light process.

Run by ``bench/live.py`` (``python bench/live_clients.py URL``), which sends commands as JSON
lines on stdin and reads one JSON line of answer per command on stdout:

- ``{"connect": [{"id": user_id, "token": access_token}, ...]}`` → ``{"connected", "failed",
  "seconds", "open"}``
- ``{"receipts": true}`` → ``{"receipts": [[event, case id or probe, user id, t], ...],
  "open"}`` (everything received since the last such command)
- ``{"close": [user_id, ...]}`` → closes those clients; ``{"stop": true}`` → closes every one.

Each client speaks Engine.IO 4 / Socket.IO 5 over one aiohttp WebSocket, the protocol and
transport python-socketio's asyncio client uses, without its per-client session, tasks and
handler dispatch: a phone here costs one socket and one coroutine, and 5,000 of them leave the
CPU to the server being measured. A message is stamped with ``time.monotonic()`` (the clock
the posting side uses, system-wide on Linux) as soon as its frame is read, and decoded only
when the receipts are asked for, after the measured window.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time

import aiohttp

NAMESPACE = "/live"
EVENT_PREFIX = f"42{NAMESPACE},"
CONNECTED_PREFIX = f"40{NAMESPACE},"


class Swarm:
    """The clients of this process and what they received, undecoded."""

    def __init__(self, url: str):
        self.url = url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
        self.session: aiohttp.ClientSession | None = None
        self.sockets: dict[int, aiohttp.ClientWebSocketResponse] = {}
        self.raw: list[tuple[float, int, str]] = []
        self.readers: set[asyncio.Task] = set()

    async def connect(self, users: list[dict], concurrency: int = 20) -> dict:
        if self.session is None:
            self.session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, force_close=True))
        gate = asyncio.Semaphore(concurrency)
        started = time.monotonic()
        done = await asyncio.gather(*(self._one(user, gate) for user in users))
        # Everything built so far lives until the end: keep the collector off it.
        gc.collect()
        gc.freeze()
        return {"connected": sum(done), "failed": len(done) - sum(done),
                "seconds": round(time.monotonic() - started, 1), "open": self.open()}

    async def _one(self, user: dict, gate: asyncio.Semaphore) -> bool:
        for _attempt in range(3):
            try:
                async with gate:
                    ws = await self.session.ws_connect(
                        self.url, timeout=aiohttp.ClientWSTimeout(ws_close=10), max_msg_size=0)
                    opened = await ws.receive_str(timeout=60)
                    if not opened.startswith("0"):
                        raise ConnectionError(opened[:200])
                    await ws.send_str(CONNECTED_PREFIX + json.dumps({"token": user["token"]}))
                    answer = await ws.receive_str(timeout=60)
                    if not answer.startswith(CONNECTED_PREFIX):
                        await ws.close()
                        raise ConnectionError(answer[:200])
            except (TimeoutError, aiohttp.ClientError, ConnectionError, TypeError):
                await asyncio.sleep(1)
                continue
            self.sockets[user["id"]] = ws
            task = asyncio.create_task(self._read(ws, user["id"]))
            self.readers.add(task)
            task.add_done_callback(self.readers.discard)
            return True
        return False

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, user_id: int) -> None:
        async for message in ws:
            now = time.monotonic()
            data = message.data
            if data == "2":  # Engine.IO ping: answer at once, as every client must
                await ws.send_str("3")
            elif isinstance(data, str) and data.startswith(EVENT_PREFIX):
                self.raw.append((now, user_id, data))

    def receipts(self) -> list:
        raw, self.raw = self.raw, []
        out = []
        for t, user_id, data in raw:
            event, payload = json.loads(data[len(EVENT_PREFIX):])[:2]
            key = payload.get("id", payload.get("probe")) if isinstance(payload, dict) else None
            out.append([event, key, user_id, t])
        return out

    def open(self) -> int:
        return sum(1 for ws in self.sockets.values() if not ws.closed)

    async def close(self, user_ids: list[int]) -> None:
        sockets = [self.sockets.pop(i) for i in user_ids if i in self.sockets]
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)

    async def stop(self) -> None:
        await self.close(list(self.sockets))
        if self.session is not None:
            await self.session.close()


async def main(url: str) -> None:
    gc.disable()  # collected by hand between phases, never while measuring
    swarm = Swarm(url)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 28)  # a connect command lists every token
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        command = json.loads(line)
        if "connect" in command:
            answer = await swarm.connect(command["connect"])
        elif "receipts" in command:
            answer = {"receipts": swarm.receipts(), "open": swarm.open()}
        elif "close" in command:
            await swarm.close(command["close"])
            answer = {"open": swarm.open()}
        elif "stop" in command:
            await swarm.stop()
            answer = {"stopped": True}
        else:
            answer = {"error": f"unknown command {sorted(command)}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
        if "stop" in command:
            return


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
