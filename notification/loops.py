"""Process-wide event loops for async work driven from synchronous code, and what lives on them.

The send job is synchronous (an RQ job), but its requests to Twilio are cheapest
as coroutines: one event loop keeps ``TWILIO_SMS_CONCURRENCY`` requests in flight
for a fraction of the CPU a thread per request costs (README, "Benchmarks").
``process_loop(name)`` is that loop: one per name per process, in a daemon
thread, started on first use and kept, so clients bound to it (an aiohttp
session, an async Redis pool) keep their connections from batch to batch.

Forks: RQ runs each job in a forked work horse, which inherits the parent's
loop object but not its thread. The process id is part of the key, so a child
starts its own loop; what the parent left on its loop is never touched (the
sockets are the parent's).

``Lanes``: at most ``size`` jobs at a time on a loop, taken first in, first
out, like a ``ThreadPoolExecutor`` of ``size`` threads; a synchronous caller waits
on one ``concurrent.futures`` future per submission, for all its results in order
(a future per job made and woke a lock each: a twelfth of the send worker's
main thread at 0 ms latency). Lanes of one size are shared by the whole process,
so two batches in flight together (``send.run.run_paced``) still keep at most
``size`` requests in flight, the second batch's starting as the first one's finish.

``Coalesced``: calls handled by one flush per round trip, one flush at a time (the
send job's dispatch-log records: one Redis write for the requests leaving together;
the status callbacks' publishes: one Redis batch for the callbacks that overlap).

``shared_threads(name, size)``: the same lifetime rules for a thread pool (the send
job's thread path, for backends that only send synchronously).

``at_exit(loop, closer)``: coroutines run on the loop when the process exits
(closing an aiohttp session: without it, aiohttp warns "Unclosed client
session" and the peer sees a reset instead of a close).

``async_redis(client)``: a sync redis-py client's server (e.g. the SMS queue's,
``connections.queue_redis``) as a ``redis.asyncio`` client of the running loop, so
a coroutine can write to it without blocking the loop for a round trip; ``None``
when the sync client's connection type has no async twin (the caller then uses
the sync client in a thread). ``run_script``: a Lua script on such a client.
"""

import asyncio
import atexit
import hashlib
import os
import threading
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from typing import Any, Generic, TypeVar

import redis
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError

T = TypeVar("T")

#: Seconds the exit hook waits for a loop's closers.
EXIT_TIMEOUT_SECONDS = 5.0

_lock = threading.Lock()
_loops: dict[tuple[int, str], asyncio.AbstractEventLoop] = {}
_closers: dict[asyncio.AbstractEventLoop, list[Callable[[], Awaitable[None]]]] = {}


def process_loop(name: str) -> asyncio.AbstractEventLoop:
    """This process's loop called ``name``, running in a daemon thread (started lazily)."""
    key = (os.getpid(), name)
    with _lock:
        loop = _loops.get(key)
        if loop is None or loop.is_closed():
            loop = _loops[key] = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name=name, daemon=True).start()
        return loop


def at_exit(loop: asyncio.AbstractEventLoop, closer: Callable[[], Awaitable[None]]) -> None:
    """Run ``closer()`` on ``loop`` when the process exits (best effort, bounded)."""
    with _lock:
        _closers.setdefault(loop, []).append(closer)


@atexit.register
def run_exit_closers() -> None:
    """Run (and forget) the closers of this process's running loops; registered with
    ``atexit``."""
    with _lock:
        mine = [loop for (pid, _), loop in _loops.items() if pid == os.getpid()]
        closers = {loop: _closers.pop(loop, []) for loop in mine}
    for loop, pending in closers.items():
        if loop.is_closed() or not loop.is_running():
            continue

        async def close_all(pending: list[Callable[[], Awaitable[None]]] = pending) -> None:
            await asyncio.gather(*(closer() for closer in pending), return_exceptions=True)

        with suppress(Exception):
            asyncio.run_coroutine_threadsafe(close_all(), loop).result(EXIT_TIMEOUT_SECONDS)


class PerLoop(Generic[T]):
    """One ``T`` per event loop, made by ``factory`` on first use from that loop.

    State bound to a loop (its listeners, its semaphores, its pending batches) must
    not be shared with another loop: asyncio objects belong to the loop they were
    made on. A closed loop's entry is dropped when a new loop asks (tests and
    restarted servers leave closed loops behind), so the table holds only live ones.
    """

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._values: dict[asyncio.AbstractEventLoop, T] = {}

    def get(self) -> T:
        """The running loop's ``T``."""
        loop = asyncio.get_running_loop()
        value = self._values.get(loop)
        if value is None:
            for closed in [other for other in self._values if other.is_closed()]:
                del self._values[closed]
            value = self._values[loop] = self._factory()
        return value


# -------- lanes -------------------------------------------------------------------------

Job = Callable[[], Awaitable[Any]]


class _Submission:
    """One ``submit_all`` call: its jobs, their results so far, and the caller's future."""

    def __init__(self, jobs: Sequence[Job], future: "Future[list[Any]]") -> None:
        self.jobs = jobs
        self.future = future
        self.results: list[Any] = [None] * len(jobs)
        self.left = len(jobs)
        self.started = False

    def take(self) -> bool:
        """Whether a job of it should still run: not once the caller cancelled it, nor
        once a job failed (its error is the caller's answer; the rest never start)."""
        if not self.started:  # its first job: was it cancelled before anything began?
            self.started = True
            return self.future.set_running_or_notify_cancel()
        return not self.future.done()

    def done_one(self, index: int, result: Any) -> None:
        self.results[index] = result
        self.left -= 1
        if not self.left:
            self.future.set_result(self.results)


class Lanes:
    """``size`` workers on ``loop`` taking jobs first in, first out."""

    def __init__(self, loop: asyncio.AbstractEventLoop, size: int) -> None:
        self.loop = loop
        self.size = size
        self._queue: asyncio.Queue[tuple[_Submission, int] | None] | None = None
        self._workers: list[asyncio.Task[None]] = []

    def submit_all(self, jobs: Sequence[Callable[[], Awaitable[T]]]) -> "Future[list[T]]":
        """Queue ``jobs`` in order (one wake-up of the loop for all); the future's result
        is theirs, in order, or the first exception one of them raised."""
        future: Future[list[T]] = Future()
        if not jobs:
            future.set_result([])
            return future
        self.loop.call_soon_threadsafe(self._enqueue, _Submission(jobs, future))
        return future

    def retire(self) -> None:
        """Let the workers finish what is queued, then stop."""
        self.loop.call_soon_threadsafe(self._stop_workers)

    def _enqueue(self, submission: _Submission) -> None:
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._workers = [self.loop.create_task(self._work()) for _ in range(self.size)]
        for index in range(len(submission.jobs)):
            self._queue.put_nowait((submission, index))

    def _stop_workers(self) -> None:
        if self._queue is not None:
            for _ in self._workers:
                self._queue.put_nowait(None)

    async def _work(self) -> None:
        assert self._queue is not None
        while (item := await self._queue.get()) is not None:
            submission, index = item
            if not submission.take():
                continue
            try:
                result = await submission.jobs[index]()
            except BaseException as exc:  # the caller's future carries it
                if not submission.future.done():
                    submission.future.set_exception(exc)
                continue
            if not submission.future.done():
                submission.done_one(index, result)


class Coalesced(Generic[T]):
    """Calls handled by one ``flush(items)`` call per round trip, one flush at a time.

    The calls of one loop iteration share a flush, and so do those made while a
    flush is in flight: they wait for it to end, then go together. At concurrency 8
    and 0 ms latency the requests leave one or two per iteration, so a flush per
    iteration carried 1.9 ids; one at a time carries what arrived during a round
    trip, for at most one more round trip of delay. Each caller still waits for
    the flush that carries its item, and gets its exception.
    """

    def __init__(self, flush: Callable[[list[T]], Awaitable[None]]) -> None:
        self._flush = flush
        self._waiting: list[tuple[T, asyncio.Future[None]]] = []
        self._draining: asyncio.Task[None] | None = None

    async def __call__(self, item: T) -> None:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._waiting.append((item, future))
        if self._draining is None:  # starts next iteration: this one's calls go with it
            self._draining = loop.create_task(self._drain())
        await future

    async def _drain(self) -> None:
        """Flush what is waiting, then what arrived meanwhile, until nothing is left."""
        try:
            while self._waiting:
                waiting, self._waiting = self._waiting, []
                await self._run(waiting)
        finally:
            for _, future in self._waiting:  # cancelled (the loop is closing)
                future.cancel()
            self._waiting = []
            self._draining = None

    async def _run(self, waiting: list[tuple[T, asyncio.Future[None]]]) -> None:
        try:
            await self._flush([item for item, _ in waiting])
        except Exception as exc:
            for _, future in waiting:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:  # cancelled (the loop is closing): no caller waits forever
            for _, future in waiting:
                future.cancel()
            raise
        for _, future in waiting:
            if not future.done():
                future.set_result(None)


_lanes: dict[tuple[int, str], Lanes] = {}


def shared_lanes(name: str, size: int) -> Lanes:
    """This process's lanes on loop ``name``; a new size retires the old lanes (they
    finish what they were given)."""
    loop = process_loop(name)
    key = (os.getpid(), name)
    with _lock:
        lanes = _lanes.get(key)
        if lanes is None or lanes.loop is not loop or lanes.size != size:
            if lanes is not None and lanes.loop is loop:
                lanes.retire()
            lanes = _lanes[key] = Lanes(loop, size)
        return lanes


_threads: dict[str, tuple[int, int, ThreadPoolExecutor]] = {}


def shared_threads(name: str, size: int) -> ThreadPoolExecutor:
    """This process's ``size`` threads called ``name``, created on first use and kept; a
    forked process makes its own, and a new size replaces them (the old pool finishes
    what it was given)."""
    with _lock:
        current = _threads.get(name)
        if current is None or current[0] != os.getpid() or current[1] != size:
            executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix=name)
            _threads[name] = (os.getpid(), size, executor)
            if current is not None and current[0] == os.getpid():
                current[2].shutdown(wait=False)
            current = _threads[name]
        return current[2]


# -------- async redis -------------------------------------------------------------------

_CONNECTION_CLASSES: dict[type, type] = {
    redis.connection.Connection: redis.asyncio.connection.Connection,
    redis.connection.SSLConnection: redis.asyncio.connection.SSLConnection,
    redis.connection.UnixDomainSocketConnection: (
        redis.asyncio.connection.UnixDomainSocketConnection
    ),
}
#: What the async connection takes from the sync one's settings (the rest is redis-py's
#: own per-pool machinery, which the async pool makes for itself).
_KWARGS = (
    "host",
    "port",
    "path",
    "db",
    "username",
    "password",
    "socket_timeout",
    "socket_connect_timeout",
    "client_name",
    "ssl_keyfile",
    "ssl_certfile",
    "ssl_cert_reqs",
    "ssl_ca_certs",
    "ssl_ca_data",
    "ssl_check_hostname",
)
#: Per loop, by the sync client's id: (the sync client, kept so its id stays its own;
#: its async twin).
_async_redis: PerLoop[dict[int, tuple[redis.Redis, Any]]] = PerLoop(dict)


def async_redis(sync: redis.Redis) -> redis.asyncio.Redis | None:
    """``sync``'s server as a client of the running loop, on one connection per loop and
    client (redis-py's ``single_connection_client``: it reconnects by itself).

    Its user (the dispatch log) sends one write at a time per batch (``Coalesced``);
    a pooled command's checkout (the pool's lock, a readiness probe of the socket,
    the release) was a third of each call's CPU, paid about once per message sent.
    Without the probe, a connection the server dropped (a restart) fails its next
    command: that command is sent again once on a new connection, so callers must
    send only commands that can run twice (the dispatch log's are set additions).
    """
    clients = _async_redis.get()
    cached = clients.get(id(sync))
    if cached is None or cached[0] is not sync:
        pool = sync.connection_pool
        connection_class = _CONNECTION_CLASSES.get(getattr(pool, "connection_class", type(None)))
        if connection_class is None:
            return None
        kwargs = {name: pool.connection_kwargs.get(name) for name in _KWARGS}
        if kwargs["socket_timeout"] is None:  # redis-py 8 keeps the configured one here
            kwargs["socket_timeout"] = pool.connection_kwargs.get("orig_socket_timeout")
        client = redis.asyncio.Redis(
            connection_pool=redis.asyncio.ConnectionPool(
                connection_class=connection_class,
                retry=Retry(NoBackoff(), 1, supported_errors=(redis.exceptions.ConnectionError,)),
                **{name: value for name, value in kwargs.items() if value is not None},
            ),
            single_connection_client=True,
        )
        client.auto_close_connection_pool = True  # as ``from_pool``: aclose closes it too
        cached = clients[id(sync)] = (sync, client)
        at_exit(asyncio.get_running_loop(), client.aclose)
    return cached[1]


_script_shas: dict[str, str] = {}


async def run_script(
    client: redis.asyncio.Redis, source: str, keys: Sequence[Any], args: Sequence[Any]
) -> Any:
    """Lua ``source`` on ``client``: ``EVALSHA`` (its SHA computed once), ``EVAL`` when
    the server does not have it yet (a restarted Redis); redis-py's ``AsyncScript``
    does the same for a quarter more CPU per call."""
    sha = _script_shas.get(source)
    if sha is None:
        digest = hashlib.sha1(source.encode(), usedforsecurity=False)
        sha = _script_shas[source] = digest.hexdigest()
    try:
        return await client.evalsha(sha, len(keys), *keys, *args)
    except NoScriptError:
        return await client.eval(source, len(keys), *keys, *args)
