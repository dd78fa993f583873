"""Connections that outlive a request: DB threads, Redis, batched layer sends, write retries.

The status webhook's database work: a few long-lived threads that keep their connection.

Django's ORM is synchronous, so the async status view runs its database work
in a thread (one hop per callback). The threads here live as long as the
process, and so do their connections: re-opening one per callback is pure cost
(a file open on SQLite, a TCP and authentication handshake on PostgreSQL) that
showed up prominently in the webhook's profile (README, "Profiling notes").
That is why ``CONN_MAX_AGE=0`` (the SQLite setting) is not applied to these
threads; a positive ``CONN_MAX_AGE`` still bounds the connection's age, and a
connection that saw an error and no longer answers is replaced before the next
call, as ``close_old_connections`` would do.

How many threads: one on SQLite, where writers take turns on the file lock
anyway (more threads only add lock waits, whose busy-wait sleeps cost
latency), a few on PostgreSQL so that one callback's round trips overlap with
another's.

Redis connection (was ``notification.redis_connection``):

The app's own Redis (early status callbacks, throttle counters): one place picks it.

``SMS_NOTIFICATIONS["REDIS_URL"]`` when the project sets it, else the connection of the SMS queue
(django-rq's), so a project that configured RQ needs nothing more. Web and worker
processes share it, which is what makes a counter kept there hold across processes.

Layer send (was ``notification.layer_send``):

Several group sends of channels_redis' core layer in two Redis round trips, not four each.

``RedisChannelLayer.group_send`` (channels_redis 4.3) costs, for *each* group,
a ``ZREMRANGEBYSCORE`` of expired members, a ``ZRANGE`` of the members, a
pipeline discarding expired messages and an ``EVAL`` carrying the whole Lua
script, one after the other; two of them even for a group nobody is in. A status
change goes to two or three groups (the notification's, its recipient's and its
creator's), so a signed status callback paid four to twelve round trips and as
many command encodings: the publish was about a third of the webhook's CPU at
hundreds of callbacks per second (README, "Profiling notes").

``group_send_many`` does the same work for a batch of (group, message) pairs:

1. one pipeline per Redis host with, for every group, the ``ZREMRANGEBYSCORE``
   of expired members and the ``ZRANGE`` of the rest;
2. one script call per host that has members (``EVALSHA``: the script is sent
   once per connection), which for each channel key discards expired messages,
   then adds the message unless the channel is at capacity, as upstream's script
   does.

What each channel receives is exactly what ``group_send`` would have stored: the
messages are built and serialized by the layer's own
``_map_channel_keys_to_connection``. Any other layer (in-memory, pub/sub, a
channels_redis version whose internals differ) gets ``group_send`` per pair.
Over-capacity channels are logged, as upstream logs them; like upstream, a full
channel does not fail the send.

Result retry (was ``notification.sending.result_retry``):

Writing a batch's results through a lost database connection.

By the time a batch writes its results, Twilio has answered: the answers
(sids, statuses, errors) exist only in this worker's memory. A dropped
connection (``pg_terminate_backend``, a failover, a restarted PostgreSQL) used
to raise out of the job; recovery later marked the whole batch ``unknown``
although Twilio had accepted every message, and staff resending them made real
duplicates. Here the write is retried: the broken connection is closed (Django
opens a new one on the next query), with a doubling pause up to 2 s, for up to
``SMS_RESULT_WRITE_TIMEOUT`` seconds. The write is one transaction guarded by
the batch's claim token, so a retry can neither half-apply nor apply twice.

Only past the timeout does it give up (``ResultsNotWritten``); the caller marks
the batch's dispatch log so recovery words the resulting ``unknown`` as "the
database was unreachable", not "the worker stopped".
"""

import asyncio
import contextvars
import functools
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from typing import Any, ParamSpec, TypeVar

import django_rq
import redis
from django.db import (
    DEFAULT_DB_ALIAS,
    DatabaseError,
    InterfaceError,
    OperationalError,
    connection,
    connections,
)

from notification.conf import app_settings
from notification.exceptions import SmsNotificationError

# -------- db_threads --------------------------------------------------------------------

P = ParamSpec("P")
R = TypeVar("R")

POSTGRES_THREADS = 4

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_threads = 0


def _thread_count() -> int:
    return 1 if connections[DEFAULT_DB_ALIAS].vendor == "sqlite" else POSTGRES_THREADS


def _get_executor() -> tuple[ThreadPoolExecutor, int]:
    global _executor, _threads
    with _lock:
        if _executor is None:
            _threads = _thread_count()
            _executor = ThreadPoolExecutor(max_workers=_threads, thread_name_prefix="webhook-db")
        return _executor, _threads


def _replace_if_unusable() -> None:
    """``close_if_unusable_or_obsolete`` without treating ``CONN_MAX_AGE=0`` as "obsolete"."""
    for conn in connections.all(initialized_only=True):
        if conn.connection is None:
            continue
        if conn.in_atomic_block or conn.get_autocommit() != conn.settings_dict["AUTOCOMMIT"]:
            conn.close()  # left mid-transaction by a bug: never reuse that state
            continue
        if conn.errors_occurred:
            if not conn.is_usable():
                conn.close()
                continue
            conn.errors_occurred = False
        max_age = conn.settings_dict["CONN_MAX_AGE"]
        if max_age and conn.close_at is not None and time.monotonic() >= conn.close_at:
            conn.close()


def _call(func: Callable[..., R], *args: object) -> R:
    _replace_if_unusable()
    try:
        return func(*args)
    finally:
        _replace_if_unusable()


async def run_in_db_thread(func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run ``func(*args, **kwargs)`` in a webhook database thread and await its result."""
    executor, _ = _get_executor()
    context = contextvars.copy_context()
    call = functools.partial(context.run, _call, functools.partial(func, *args, **kwargs))
    return await asyncio.get_running_loop().run_in_executor(executor, call)


def close_connections() -> None:
    """Close the threads' connections (tests: before the test database is dropped).

    Each thread must close its own connection, so one task per thread is
    queued; the barrier keeps a thread from taking two of them.
    """
    with _lock:
        executor, threads = _executor, _threads
    if executor is None:
        return
    barrier = threading.Barrier(threads)

    def close_mine() -> None:
        connections.close_all()
        barrier.wait(timeout=10)

    for future in [executor.submit(close_mine) for _ in range(threads)]:
        future.result(timeout=15)


# -------- redis_connection --------------------------------------------------------------

#: Seconds a command may take before the caller treats Redis as unavailable.
SOCKET_TIMEOUT = 5

_clients: dict[str, redis.Redis] = {}


def queue_redis() -> redis.Redis:
    """The SMS queue's Redis (django-rq's ``RQ_QUEUES`` entry), one client per process.

    ``django_rq.get_connection`` builds a new client, with a new connection pool,
    at every call: each batch's dispatch log and wake-up check then opened fresh
    TCP connections (a handshake and redis-py's driver-info setup each, one per
    sending thread), a few per cent of a send worker's CPU (README, "Benchmarks").
    The pool is thread-safe, re-made by redis-py after a fork, and its broken
    connections are replaced on the next command, so one client per queue
    configuration serves the whole process.
    """
    from django_rq.settings import QUEUES

    key = "rq:" + repr(sorted(QUEUES[app_settings.SMS_QUEUE_NAME].items()))
    client = _clients.get(key)
    if client is None:
        client = _clients[key] = django_rq.get_connection(app_settings.SMS_QUEUE_NAME)
    return client


def get_redis() -> redis.Redis:
    """A client on the app's Redis (one per URL per process: connections are pooled)."""
    url = app_settings.REDIS_URL
    if not url:
        return queue_redis()
    client = _clients.get(url)
    if client is None:
        client = _clients[url] = redis.Redis.from_url(url, socket_timeout=SOCKET_TIMEOUT)
    return client


# -------- layer_send --------------------------------------------------------------------

logger = logging.getLogger(__name__)

_SEND = """
local over_capacity = 0
local count = #KEYS
local now = tonumber(ARGV[2 * count + 1])
local expiry = tonumber(ARGV[2 * count + 2])
for i = 1, count do
    redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, now - expiry)
    if redis.call('ZCOUNT', KEYS[i], '-inf', '+inf') < tonumber(ARGV[count + i]) then
        redis.call('ZADD', KEYS[i], now, ARGV[i])
        redis.call('EXPIRE', KEYS[i], expiry)
    else
        over_capacity = over_capacity + 1
    end
end
return over_capacity
"""

_REQUIRED = ("_group_key", "_map_channel_keys_to_connection", "consistent_hash", "connection")


def _batchable(layer: Any) -> bool:
    """A channels_redis core layer with the internals this module relies on."""
    return type(layer).__module__.startswith("channels_redis.core") and all(
        hasattr(layer, name) for name in _REQUIRED
    )


async def group_send_many(layer: Any, sends: list[tuple[str, dict[str, Any]]]) -> None:
    """Send each message to its group; raises what Redis raises (the caller logs it)."""
    if not sends:
        return
    if not _batchable(layer):
        results = await asyncio.gather(
            *(layer.group_send(group, message) for group, message in sends),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return
    for group, _message in sends:
        assert layer.require_valid_group_name(group), "Group name not valid"
    members = await _members(layer, [group for group, _message in sends])
    keys_by_host: defaultdict[int, list[bytes]] = defaultdict(list)
    messages_by_host: defaultdict[int, list[bytes]] = defaultdict(list)
    capacities_by_host: defaultdict[int, list[int]] = defaultdict(list)
    for (_group, message), channels in zip(sends, members, strict=True):
        if not channels:
            continue
        hosts, messages, capacities = layer._map_channel_keys_to_connection(channels, message)
        for host, channel_keys in hosts.items():
            keys_by_host[host] += channel_keys
            messages_by_host[host] += [messages[key] for key in channel_keys]
            capacities_by_host[host] += [capacities[key] for key in channel_keys]
    if keys_by_host:
        await asyncio.gather(
            *(
                _store(
                    layer,
                    host,
                    keys_by_host[host],
                    messages_by_host[host],
                    capacities_by_host[host],
                )
                for host in keys_by_host
            )
        )


async def _members(layer: Any, groups: list[str]) -> list[list[str]]:
    """Each group's current channels (expired memberships dropped first), one pipeline per host."""
    by_host: defaultdict[int, list[int]] = defaultdict(list)
    for position, group in enumerate(groups):
        by_host[layer.consistent_hash(group)].append(position)
    members: list[list[str]] = [[] for _ in groups]
    expired_before = int(time.time()) - layer.group_expiry

    async def read(host: int, positions: list[int]) -> None:
        pipe = layer.connection(host).pipeline(transaction=False)
        for position in positions:
            key = layer._group_key(groups[position])
            pipe.zremrangebyscore(key, min=0, max=expired_before)
            pipe.zrange(key, 0, -1)
        replies = await pipe.execute()
        for position, names in zip(positions, replies[1::2], strict=True):
            members[position] = [name.decode("utf8") for name in names]

    await asyncio.gather(*(read(host, positions) for host, positions in by_host.items()))
    return members


async def _store(
    layer: Any, host: int, keys: list[bytes], messages: list[bytes], capacities: list[int]
) -> None:
    connection = layer.connection(host)
    script = connection.register_script(_SEND)
    over = await script(keys=keys, args=[*messages, *capacities, time.time(), layer.expiry])
    if over:
        logger.info("%s of %s channel messages over capacity", over, len(keys))


# -------- result_retry ------------------------------------------------------------------

# The send path's logger: operators filter on "notification.send".
sending_logger = logging.getLogger("notification.send")

T = TypeVar("T")

#: Errors of a lost or unreachable database (not constraint or programming errors).
CONNECTION_LOST = (OperationalError, InterfaceError)
FIRST_PAUSE_SECONDS = 0.1
MAX_PAUSE_SECONDS = 2.0


class ResultsNotWritten(SmsNotificationError, RuntimeError):
    """The database stayed unreachable for the whole write timeout."""


def drop_connection() -> None:
    """Close the broken connection; the next query opens a fresh one."""
    with suppress(DatabaseError):
        connection.close()


def write_with_retry(write: Callable[[], T], *, timeout: float, what: str = "results") -> T:
    """Run ``write`` (one transaction) until it succeeds or ``timeout`` seconds pass.

    Inside an outer transaction nothing can be retried (the connection's work
    so far is lost with it): the error is raised as is.
    """
    deadline = time.monotonic() + timeout
    pause = FIRST_PAUSE_SECONDS
    lost_at: float | None = None
    attempts = 0
    while True:
        attempts += 1
        try:
            result = write()
        except CONNECTION_LOST as error:
            if connection.in_atomic_block:
                raise
            drop_connection()
            if lost_at is None:
                lost_at = time.monotonic()
                sending_logger.warning(
                    'sms_%s db=lost error="%s" (answers kept in memory; retrying for up to %g s)',
                    what,
                    str(error).strip().splitlines()[0] if str(error).strip() else type(error),
                    timeout,
                )
            if time.monotonic() + pause > deadline:
                raise ResultsNotWritten(
                    f"The database was unreachable for {timeout:g} s while writing {what}."
                ) from error
            time.sleep(pause)
            pause = min(MAX_PAUSE_SECONDS, pause * 2)
            continue
        if lost_at is not None:
            sending_logger.warning(
                "sms_%s db=recovered after_s=%.1f attempts=%d",
                what,
                time.monotonic() - lost_at,
                attempts,
            )
        return result
