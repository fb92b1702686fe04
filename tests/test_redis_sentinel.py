"""A city whose Redis must survive runs it under Sentinel: ``REDIS_URL=redis+sentinel://…``
gives the intake limit and the live channel's queue the master Sentinel names (real
redis-server and Sentinel processes)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest
import redis
from cityfixtures import SIZE, SOUTH, WEST, build_city
from live_server import PrivateRedis, free_port, wait_for

from gridmgr.config import rate_limit_storage
from gridmgr.extensions import db

pytestmark = pytest.mark.skipif(not shutil.which("redis-server"), reason="needs redis-server")
SERVICE = "gridmgr"


@pytest.fixture()
def sentinel_url(tmp_path):
    """One Redis and one Sentinel watching it as ``gridmgr``: the URL gridmgr is given."""
    master = PrivateRedis(tmp_path)
    master.start()
    port = free_port()
    config = tmp_path / "sentinel.conf"
    config.write_text(f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
                      f"sentinel monitor {SERVICE} 127.0.0.1 {master.port} 1\n")
    sentinel = subprocess.Popen([shutil.which("redis-server"), str(config), "--sentinel"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    asked = redis.Redis(port=port)
    try:
        assert wait_for(lambda: _master_known(asked), timeout=10)
        yield f"redis+sentinel://127.0.0.1:{port}/0/{SERVICE}", master
    finally:
        asked.close()
        sentinel.kill()
        sentinel.wait()
        master.kill()


def _master_known(sentinel: redis.Redis) -> bool:
    try:
        return bool(sentinel.execute_command("SENTINEL", "get-master-addr-by-name", SERVICE))
    except redis.RedisError:
        return False


SERVER = """
import json, sys, tempfile
from gridmgr import create_app
from gridmgr.extensions import limiter, socketio
url, lon, lat = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
app = create_app({"TESTING": True, "DATABASE_URL": url, "SQLALCHEMY_DATABASE_URI": url,
                  "GRIDMGR_HOME": tempfile.mkdtemp(), "RATELIMIT_ENABLED": True,
                  "SECRET_KEY": "test-secret-key-that-is-long-enough-for-hs256",
                  "GRIDMGR_INTAKE_RATE_LIMIT": "3 per minute",
                  "GRIDMGR_INTAKE_LIMIT_FLUSH_SECONDS": 0})
client = app.test_client()
answers = [client.post("/api/v1/reports", json={"lon": lon, "lat": lat, "description": "井盖缺失",
                       "client_id": f"sentinel-{n}"}, environ_base={"REMOTE_ADDR": "203.0.113.7"}
                       ).status_code for n in range(4)]
with app.app_context():
    socketio.emit("notice", {"text": "演练"}, namespace="/live", to="city:0")
print(json.dumps({"answers": answers, "storage": type(limiter.storage).__name__,
                  "queue": type(socketio.server.manager).__name__}))
"""


def test_a_server_given_a_sentinel_url_limits_reports_and_queues_live_messages_in_the_master(
        app, database_url, sentinel_url):
    url, master = sentinel_url
    with app.app_context():
        build_city()
        db.session.remove()
    direct = redis.Redis(port=master.port)
    listener = direct.pubsub()
    try:
        listener.subscribe("gridmgr-socketio")
        assert wait_for(lambda: listener.get_message(timeout=0.1) is not None, timeout=5)
        result = subprocess.run(
            [sys.executable, "-c", SERVER, database_url, str(WEST + SIZE / 2),
             str(SOUTH + SIZE / 2)], env={**os.environ, "REDIS_URL": url},
            capture_output=True, text=True, timeout=120, check=True)
        outcome = json.loads(result.stdout.strip().splitlines()[-1])
        assert outcome == {"answers": [201, 201, 201, 429], "storage": "RedisSentinelStorage",
                           "queue": "RedisManager"}
        # The intake counts live in the master's database 0 ...
        assert direct.keys("*")
        # ... and the live channel's queue published through it.
        message = None
        end = time.monotonic() + 5
        while message is None and time.monotonic() < end:
            message = listener.get_message(timeout=0.2)
        assert message is not None and message["channel"] == b"gridmgr-socketio"
    finally:
        listener.close()
        direct.close()


def test_the_rate_limit_storage_takes_the_service_and_database_of_a_sentinel_url():
    assert rate_limit_storage("redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/0/gridmgr") == (
        "redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/gridmgr", {"db": 0})
    assert rate_limit_storage("redis://127.0.0.1:6379/0") == ("redis://127.0.0.1:6379/0", {})
    assert rate_limit_storage(None) == ("memory://", {})
