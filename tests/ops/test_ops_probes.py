"""``/healthz`` and ``/readyz`` against real dependencies: a Redis that stops and comes back,
a port that accepts connections and never answers, a migration left unapplied."""

import json
import socket
import time
from collections.abc import Iterator

import pytest
from django.db.migrations.recorder import MigrationRecorder
from django.test import Client

from devstack.redis_server import RedisServer
from notification.ops import probes
from tests.support.fixtures_services import _point_settings_at_redis, _restore_settings
from tests.support.settings_helpers import set_sms
from tests.support.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh_probe(settings, redis_url) -> Iterator[None]:
    set_sms(settings, READYZ_CACHE_SECONDS=0)
    set_sms(settings, READYZ_TIMEOUT=1.0)
    probes.clear_cache()
    yield
    probes.clear_cache()
    probes.close_database_connection()  # before the test database is flushed or dropped


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A Redis only this test uses, the queue's and the channel layer's, so it can be stopped."""
    server = RedisServer().start()
    saved = _point_settings_at_redis(server.url)
    try:
        yield server
    finally:
        _restore_settings(saved)
        server.stop()


def _readyz(client: Client | None = None) -> tuple[int, dict]:
    response = (client or Client()).get("/readyz")
    assert response["Content-Type"] == "application/json"
    return response.status_code, json.loads(response.content)


def test_healthz_answers_without_login_csrf_or_dependencies(django_assert_num_queries, redis):
    client = Client(enforce_csrf_checks=True)
    commands_before = redis.info("stats")["total_commands_processed"]
    with django_assert_num_queries(0):
        response = client.get("/healthz")
        head = client.head("/healthz")
    assert response.status_code == 200
    assert json.loads(response.content) == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]
    assert head.status_code == 200
    # INFO itself is one command: nothing else reached Redis.
    assert redis.info("stats")["total_commands_processed"] == commands_before + 1


def test_readyz_is_200_when_every_dependency_answers():
    status, body = _readyz()
    assert status == 200, body
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "migrations", "redis_queue", "channel_layer"}
    assert all(check["ok"] for check in body["checks"].values())


def test_readyz_names_a_stopped_redis_then_recovers_by_itself(own_redis):
    assert _readyz()[0] == 200
    port = own_redis.port
    own_redis.process.terminate()
    own_redis.process.wait(10)

    status, body = _readyz()
    assert status == 503
    assert body["status"] == "error"
    assert body["checks"]["database"] == {"ok": True}
    for name in ("redis_queue", "channel_layer"):
        check = body["checks"][name]
        assert check["ok"] is False
        assert check["error"] == "ConnectionError"
        assert "Redis" in check["reason"]
    text = json.dumps(body)
    assert str(port) not in text and "127.0.0.1" not in text and "redis://" not in text
    assert "Traceback" not in text

    restarted = RedisServer(port=port).start()
    try:
        wait_until(lambda: _readyz()[0] == 200, timeout=15, what="readyz back to 200")
    finally:
        restarted.stop()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP port that accepts connections and never answers (a hung Redis)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def test_readyz_gives_up_on_a_hung_dependency_within_its_timeout(settings, silent_port):
    set_sms(settings, READYZ_TIMEOUT=0.5)
    saved = _point_settings_at_redis(f"redis://127.0.0.1:{silent_port}/0")
    try:
        started = time.monotonic()
        status, body = _readyz()
        elapsed = time.monotonic() - started
    finally:
        _restore_settings(saved)
    assert status == 503
    assert body["checks"]["redis_queue"]["ok"] is False
    assert body["checks"]["redis_queue"]["error"] in {"Timeout", "TimeoutError"}
    assert body["checks"]["database"]["ok"] is True
    assert elapsed < 3.0, elapsed  # the timeout is 0.5 s; never the socket's default


def test_readyz_reports_unapplied_migrations():
    recorder = MigrationRecorder(__import__("django.db").db.connection)
    last = recorder.migration_qs.filter(app="notification").order_by("-id").first()
    assert last is not None
    name = last.name
    last.delete()
    try:
        status, body = _readyz()
        assert status == 503
        check = body["checks"]["migrations"]
        assert check == {
            "ok": False,
            "error": "UnappliedMigrations",
            "reason": "1 migration(s) not applied",
        }
    finally:
        recorder.record_applied("notification", name)
        probes.clear_cache()
    assert _readyz()[0] == 200


def test_readyz_answers_a_probe_flood_from_its_cache(settings, own_redis):
    set_sms(settings, READYZ_CACHE_SECONDS=60)
    assert _readyz()[0] == 200
    before = own_redis_commands(own_redis)
    for _ in range(50):
        assert _readyz()[0] == 200
    # Fifty probes, not one more PING on Redis.
    assert own_redis_commands(own_redis) == before


def own_redis_commands(server: RedisServer) -> int:
    import redis

    info = redis.Redis.from_url(server.url).info("commandstats")
    return int(info.get("cmdstat_ping", {}).get("calls", 0))
