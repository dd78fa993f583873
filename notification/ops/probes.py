"""``/healthz`` (liveness) and ``/readyz`` (readiness): what a load balancer or Kubernetes calls.

Liveness answers while the process serves requests and touches nothing else: a
liveness probe that failed with the database would make an orchestrator restart
every web process during a database outage, which cures nothing.

Readiness checks what a request needs: the database answers, its migrations are
all applied, and Redis answers for the RQ queue and for the channel layer. Each
check runs in its own long-lived thread and is waited for at most
``READYZ_TIMEOUT`` seconds, so a dependency that hangs (a dropped TCP connection,
a PostgreSQL failover) gives a prompt 503 instead of a hung probe; while a
check is still stuck from an earlier probe it is reported as timed out rather
than started again, so hung threads never pile up. Results are cached for
``READYZ_CACHE_SECONDS`` (one round of checks per period, however many probes
arrive) and recomputed afterwards, so the probe recovers by itself.

A failing check names only the error class and a fixed reason: exception texts
carry hosts, ports, user names and sometimes URLs with passwords, and this
endpoint needs no login.

Cache (was ``notification.ops.cache``):

A value recomputed at most once per period, shared by the threads of one process.
"""

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import django_rq
import redis
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from notification.conf import app_settings
from notification.exceptions import SmsNotificationError

# -------- cache -------------------------------------------------------------------------

T = TypeVar("T")


class TimedCache(Generic[T]):
    """``get(compute, seconds)``: the last value if younger than ``seconds``, else a new one.

    Concurrent callers wait for the one computing instead of computing too, so a
    flood of probes or scrapes costs one computation per period, whatever its size.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value: T | None = None
        self._at = float("-inf")

    def get(self, compute: Callable[[], T], seconds: float) -> T:
        with self._lock:
            now = time.monotonic()
            if self._value is None or now - self._at >= seconds:
                self._value = compute()
                self._at = time.monotonic()
            return self._value

    def clear(self) -> None:
        with self._lock:
            self._value = None


# -------- probes ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckResult:
    ok: bool
    error: str = ""
    reason: str = ""
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"ok": self.ok}
        if not self.ok:
            data.update(error=self.error, reason=self.reason)
        if self.note:
            data["note"] = self.note
        return data


OK = CheckResult(True)


class CheckFailed(SmsNotificationError):
    """A check's own verdict (not an exception from the dependency)."""

    def __init__(self, error: str, reason: str) -> None:
        super().__init__(reason)
        self.error = error
        self.reason = reason


# --- the checks (each runs in its check thread) ------------------------------------

_migrations_applied = False


def check_database() -> CheckResult:
    """One ``SELECT 1`` on this thread's connection (reopened after any failure)."""
    from django.db import connection

    try:
        connection.close_if_unusable_or_obsolete()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        connection.close()
        raise
    return OK


def check_migrations() -> CheckResult:
    """No migration of the code this process runs is left unapplied.

    Once everything is applied it stays so for this process (new migrations
    arrive with new code, hence a new process), so the plan, which reads every
    migration file, is computed until it is empty and never again.
    """
    global _migrations_applied
    if _migrations_applied:
        return OK
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception:
        connection.close()
        raise
    if plan:
        raise CheckFailed("UnappliedMigrations", f"{len(plan)} migration(s) not applied")
    _migrations_applied = True
    return OK


_redis_clients: dict[str, redis.Redis] = {}


def _client(key: str, make: Any) -> redis.Redis:
    """One client per configuration (``key``), reused by every probe of this process."""
    client = _redis_clients.get(key)
    if client is None:
        client = _redis_clients[key] = make()
    return client


def _timeouts() -> dict[str, float]:
    seconds = float(app_settings.READYZ_TIMEOUT)
    return {"socket_timeout": seconds, "socket_connect_timeout": seconds}


def check_rq_redis() -> CheckResult:
    """PING on the SMS queue's Redis (django-rq's settings, our short timeouts)."""

    pool = django_rq.get_connection(app_settings.SMS_QUEUE_NAME).connection_pool
    kwargs = {**pool.connection_kwargs, **_timeouts()}

    def make() -> redis.Redis:
        return redis.Redis(
            connection_pool=redis.ConnectionPool(connection_class=pool.connection_class, **kwargs)
        )

    _client(repr(sorted(kwargs.items(), key=str)), make).ping()
    return OK


def _layer_address(host: Any) -> str | None:
    """A channels_redis host entry as a Redis URL (``None`` for a form not understood)."""
    if isinstance(host, str):
        return host
    if isinstance(host, dict) and isinstance(host.get("address"), str):
        return host["address"]
    if isinstance(host, list | tuple) and len(host) == 2:
        return f"redis://{host[0]}:{int(host[1])}/0"
    return None


def check_channel_layer() -> CheckResult:
    """PING on each Redis of the default channel layer (nothing to check when in memory)."""
    layer = getattr(settings, "CHANNEL_LAYERS", {}).get("default")
    if not layer:  # a project without live status has no such dependency
        return CheckResult(True, note="no channel layer configured")
    if "redis" not in str(layer.get("BACKEND", "")).lower():
        return CheckResult(True, note="not Redis: nothing to check")
    hosts = layer.get("CONFIG", {}).get("hosts") or ["redis://localhost:6379/0"]
    for host in hosts:
        address = _layer_address(host)
        if address is None:
            raise CheckFailed("NotConfigured", "a channel layer host is not understood")
        timeouts = _timeouts()
        key = f"{address} {sorted(timeouts.items())}"
        _client(key, lambda a=address, t=timeouts: redis.Redis.from_url(a, **t)).ping()
    return OK


# --- running them with deadlines ---------------------------------------------------

_REASONS = {
    "database": "the database did not answer a query",
    "migrations": "could not read the applied migrations",
    "redis_queue": "the RQ queue's Redis did not answer PING",
    "channel_layer": "the channel layer's Redis did not answer PING",
}


class _CheckThread:
    """One long-lived daemon thread for one check; a check still running is never started again.

    A daemon thread rather than a ``ThreadPoolExecutor``: the executor's threads are
    joined at interpreter exit, so a check stuck on a hung database would keep the
    web server from shutting down.
    """

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._running: Future | None = None
        self._lock = threading.Lock()
        threading.Thread(target=self._work, name=f"readyz-{name}", daemon=True).start()

    def _work(self) -> None:
        while True:
            future, check = self._jobs.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(check())
            except BaseException as exc:
                future.set_exception(exc)

    def submit(self, check: Any) -> Future | None:
        with self._lock:
            if self._running is not None and not self._running.done():
                return None  # stuck since an earlier probe
            future: Future = Future()
            self._jobs.put((future, check))
            self._running = future
            return future


def _outcome(name: str, check: Any) -> CheckResult:
    try:
        return check()
    except CheckFailed as failed:
        return CheckResult(False, failed.error, failed.reason)
    except Exception as exc:
        return CheckResult(False, type(exc).__name__, _REASONS[name])


def _database_and_migrations() -> dict[str, CheckResult]:
    """Both on one thread and one connection; no migration check without a database."""
    database = _outcome("database", check_database)
    if not database.ok:
        return {
            "database": database,
            "migrations": CheckResult(False, "Skipped", "the database is unavailable"),
        }
    return {"database": database, "migrations": _outcome("migrations", check_migrations)}


#: Thread name -> (what it runs, the checks it reports).
_GROUPS: dict[str, tuple[Any, tuple[str, ...]]] = {
    "database": (_database_and_migrations, ("database", "migrations")),
    "redis_queue": (
        lambda: {"redis_queue": _outcome("redis_queue", check_rq_redis)},
        ("redis_queue",),
    ),
    "channel_layer": (
        lambda: {"channel_layer": _outcome("channel_layer", check_channel_layer)},
        ("channel_layer",),
    ),
}
_threads: dict[str, _CheckThread] = {}
_threads_lock = threading.Lock()


def _thread(name: str) -> _CheckThread:
    with _threads_lock:
        if name not in _threads:
            _threads[name] = _CheckThread(name)
        return _threads[name]


def _timed_out(seconds: float) -> CheckResult:
    return CheckResult(False, "Timeout", f"no answer within {seconds:g} s")


def run_checks() -> dict[str, CheckResult]:
    """Every check, in parallel, each waited for until one shared deadline."""
    seconds = float(app_settings.READYZ_TIMEOUT)
    deadline = time.monotonic() + seconds
    futures = {name: (_thread(name).submit(run), names) for name, (run, names) in _GROUPS.items()}
    results: dict[str, CheckResult] = {}
    for future, names in futures.values():
        try:
            if future is None:
                raise FutureTimeout
            results.update(future.result(timeout=max(0.0, deadline - time.monotonic())))
        except FutureTimeout:
            results.update({name: _timed_out(seconds) for name in names})
    return results


_cache: TimedCache[dict[str, CheckResult]] = TimedCache()


def close_database_connection(timeout: float = 10.0) -> None:
    """Close the database check thread's connection (tests: before the test database
    is dropped; it is otherwise kept, like any persistent connection, for CONN_MAX_AGE)."""
    thread = _threads.get("database")
    if thread is None:
        return

    def close() -> dict[str, CheckResult]:
        from django.db import connection

        connection.close()
        return {}

    future = thread.submit(close)
    if future is not None:
        future.result(timeout=timeout)


def clear_cache() -> None:
    """Forget the cached answer and the migrations verdict (tests; settings changed)."""
    global _migrations_applied
    _cache.clear()
    _migrations_applied = False


def readiness() -> dict[str, CheckResult]:
    """Every check's result, computed at most once per ``READYZ_CACHE_SECONDS``."""
    return _cache.get(run_checks, float(app_settings.READYZ_CACHE_SECONDS))


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """``GET /healthz``: 200 while this process serves requests; checks nothing else."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    """``GET /readyz``: 200 when every dependency answers, else 503; JSON names each."""
    results = readiness()
    ready = all(result.ok for result in results.values())
    body = {
        "status": "ok" if ready else "error",
        "checks": {name: result.as_dict() for name, result in results.items()},
    }
    return JsonResponse(body, status=200 if ready else 503)
