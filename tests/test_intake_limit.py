"""The public intake limit shared by several server processes through Redis, counted in
batches (gridmgr.shared_counts): each process below is one ``BatchedWindowCounts``."""

import time

import pytest
import redis
from limits import parse
from live_server import PrivateRedis

from gridmgr.shared_counts import BatchedWindowCounts

# A day's window: a test does not cross into the next one (windows are aligned to UTC days).
LIMIT = parse("10 per day")
ADDRESS = "198.51.100.23"


@pytest.fixture()
def shared_redis(tmp_path):
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.kill()


def admitted(process: BatchedWindowCounts, client, n: int, flush_seconds: float) -> list[bool]:
    return [process.hit(client, LIMIT, ADDRESS, flush_seconds).used <= LIMIT.amount
            for _ in range(n)]


def shared_total(client) -> int:
    return sum(int(client.get(key)) for key in client.keys("intake-test/*"))


def test_one_process_stops_an_address_exactly_at_its_limit(shared_redis):
    client = redis.Redis.from_url(shared_redis.url)
    process = BatchedWindowCounts("intake-test")
    answers = admitted(process, client, 13, flush_seconds=3600)
    assert answers == [True] * 10 + [False] * 3
    # From half the limit on, every report went to Redis at once.
    assert shared_total(client) == 13


def test_processes_that_share_an_address_stop_it_within_half_a_limit(shared_redis):
    client = redis.Redis.from_url(shared_redis.url)
    first, second = BatchedWindowCounts("intake-test"), BatchedWindowCounts("intake-test")
    answers = []
    for _ in range(10):  # the address alternates between two server processes
        answers += admitted(first, client, 1, 3600) + admitted(second, client, 1, 3600)
    assert LIMIT.amount <= answers.count(True) <= LIMIT.amount + LIMIT.amount // 2
    assert answers[-6:] == [False] * 6  # once both have counted in Redis, both refuse
    assert shared_total(client) == 20


def test_with_no_batching_processes_share_the_limit_exactly(shared_redis):
    client = redis.Redis.from_url(shared_redis.url)
    first, second = BatchedWindowCounts("intake-test"), BatchedWindowCounts("intake-test")
    answers = []
    for _ in range(7):
        answers += admitted(first, client, 1, 0) + admitted(second, client, 1, 0)
    assert answers == [True] * 10 + [False] * 4


def test_counts_reach_redis_within_the_flush_interval(shared_redis):
    client = redis.Redis.from_url(shared_redis.url)
    process = BatchedWindowCounts("intake-test")
    admitted(process, client, 3, flush_seconds=0.3)
    assert shared_total(client) == 1  # the first report flushed; two wait in the process
    time.sleep(0.35)
    admitted(process, client, 1, flush_seconds=0.3)
    assert shared_total(client) == 4


def test_counts_made_while_redis_is_down_are_added_when_it_is_back(shared_redis):
    client = redis.Redis.from_url(shared_redis.url)
    process = BatchedWindowCounts("intake-test")
    admitted(process, client, 2, flush_seconds=0)
    shared_redis.kill()
    for _ in range(3):
        with pytest.raises(redis.RedisError):
            process.hit(client, LIMIT, ADDRESS, 0)
    shared_redis.start()  # an empty Redis on the same port
    assert process.hit(client, LIMIT, ADDRESS, 0).used == 4  # the three kept, and this one
