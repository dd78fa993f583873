"""The sending event loop's parts: FIFO lanes that bound what is in flight across batches,
coalesced dispatch-log records (one Redis write for the requests leaving together, each
still refused once recovery closed the log), and the thread path kept for backends that
only send synchronously."""

import asyncio
import functools
import threading

import pytest

from notification.backends.base import Accepted, BaseSmsBackend, OutgoingSms
from notification.loops import Coalesced, Lanes, process_loop
from notification.send.dispatch import (
    SEND_LOOP,
    Dispatcher,
    DispatchLog,
    DispatchLogError,
    SendRequest,
    dispatch_key,
    settle,
)
from tests.support.waiting import wait_until


def on_loop(coroutine, loop=None):
    return asyncio.run_coroutine_threadsafe(coroutine, loop or process_loop(SEND_LOOP)).result(10)


def test_lanes_run_at_most_their_size_first_in_first_out_across_submissions() -> None:
    """Two batches submitted one after the other share the lanes: the second batch's
    request starts only when one of the first batch's ends, and never before it."""
    loop = process_loop("test-lanes")
    lanes = Lanes(loop, 2)
    started: list[int] = []
    gates = [asyncio.Event() for _ in range(4)]

    async def job(index: int) -> int:
        started.append(index)
        await gates[index].wait()
        return index

    first = lanes.submit_all([functools.partial(job, i) for i in range(3)])
    second = lanes.submit_all([functools.partial(job, 3)])
    wait_until(lambda: started == [0, 1], what="the first two jobs")
    for _ in range(3):  # several turns of the loop: nothing else may start meanwhile
        on_loop(asyncio.sleep(0), loop)
    assert started == [0, 1]

    loop.call_soon_threadsafe(gates[1].set)
    wait_until(lambda: started == [0, 1, 2], what="the third job, in the freed lane")
    loop.call_soon_threadsafe(gates[0].set)
    wait_until(lambda: started == [0, 1, 2, 3], what="the second submission's job")
    for gate in gates[2:]:
        loop.call_soon_threadsafe(gate.set)
    assert first.result(10) + second.result(10) == [0, 1, 2, 3]


def test_a_submission_fails_with_its_first_error_and_starts_nothing_more() -> None:
    """One future per submission: a job that raises is the caller's answer, and the
    submission's later jobs never start (nothing of it is written anyway)."""
    loop = process_loop("test-lanes-error")
    lanes = Lanes(loop, 1)
    started: list[int] = []

    async def job(index: int) -> int:
        started.append(index)
        if index == 1:
            raise RuntimeError("job 1 failed")
        return index

    failing = lanes.submit_all([functools.partial(job, i) for i in range(3)])
    after = lanes.submit_all([functools.partial(job, 3)])

    with pytest.raises(RuntimeError, match="job 1 failed"):
        failing.result(10)
    assert after.result(10) == [3]
    assert started == [0, 1, 3]
    assert lanes.submit_all([]).result(0) == []


def test_a_submission_cancelled_before_it_began_runs_nothing() -> None:
    loop = process_loop("test-lanes-cancel")
    lanes = Lanes(loop, 1)
    gate, started = threading.Event(), []

    async def blocker() -> None:
        await asyncio.get_running_loop().run_in_executor(None, gate.wait, 10)

    async def job() -> None:
        started.append(True)

    running = lanes.submit_all([blocker])
    waiting = lanes.submit_all([job, job])
    assert waiting.cancel()
    gate.set()

    assert running.result(10) == [None]
    on_loop(asyncio.sleep(0.05), loop)
    assert started == []


def test_coalesced_calls_of_one_loop_turn_share_one_flush_and_its_failure() -> None:
    flushes: list[list[int]] = []

    async def flush(items: list[int]) -> None:
        flushes.append(items)
        if 99 in items:
            raise RuntimeError("refused")

    async def run() -> list[object]:
        coalesced = Coalesced(flush)
        await asyncio.gather(coalesced(1), coalesced(2), coalesced(3))
        await coalesced(4)
        return await asyncio.gather(coalesced(5), coalesced(99), return_exceptions=True)

    outcomes = asyncio.run(run())

    assert flushes == [[1, 2, 3], [4], [5, 99]]
    assert [str(outcome) for outcome in outcomes] == ["refused", "refused"]


def test_calls_made_while_a_flush_is_in_flight_go_together_in_the_next_one() -> None:
    flushes: list[list[int]] = []

    async def run() -> None:
        gate = asyncio.Event()

        async def flush(items: list[int]) -> None:
            flushes.append(items)
            if len(flushes) == 1:
                await gate.wait()

        coalesced = Coalesced(flush)
        first = asyncio.ensure_future(coalesced(1))
        later = []
        for item in (2, 3, 4):  # three separate loop iterations, all during the first flush
            await asyncio.sleep(0)
            later.append(asyncio.ensure_future(coalesced(item)))
        await asyncio.sleep(0)
        assert flushes == [[1]] and not first.done()
        gate.set()
        await asyncio.gather(first, *later)

    asyncio.run(run())

    assert flushes == [[1], [2, 3, 4]]


def test_async_records_land_together_and_are_refused_once_recovery_closed_the_log(
    redis,
) -> None:
    log = DispatchLog("coalesced")
    log.open()

    async def record(*ids: int) -> list[object]:
        return await asyncio.gather(
            *(log.record_start_async(i) for i in ids), return_exceptions=True
        )

    assert on_loop(record(1, 2, 3)) == [None, None, None]
    assert {int(m) for m in redis.smembers(dispatch_key("coalesced")) if m.isdigit()} == {1, 2, 3}

    assert settle(["coalesced"])["coalesced"] == {1, 2, 3}  # recovery closes it
    refused = on_loop(record(4, 5))
    assert all(isinstance(outcome, DispatchLogError) for outcome in refused)
    assert "closed by recovery" in str(refused[0])
    assert {int(m) for m in redis.smembers(dispatch_key("coalesced")) if m.isdigit()} == {1, 2, 3}


def test_records_land_after_redis_lost_its_scripts_and_its_connection(redis) -> None:
    """A restarted Redis has no scripts and drops our connection: the next record
    loads the script again (``EVAL``) on a new connection, and still lands."""
    log = DispatchLog("restarted")
    log.open()
    assert on_loop(log.record_start_async(1)) is None

    redis.script_flush()
    redis.client_kill_filter(_type="normal", skipme=True)

    assert on_loop(log.record_start_async(2)) is None
    assert {int(m) for m in redis.smembers(dispatch_key("restarted")) if m.isdigit()} == {1, 2}


class ThreadNoting(BaseSmsBackend):
    """A backend with only a sync ``send``: notes which thread and instance sent what."""

    seen: list[tuple[str, int]] = []
    lock = threading.Lock()

    def send(self, message: OutgoingSms) -> Accepted:
        with self.lock:
            self.seen.append((threading.current_thread().name, id(self)))
        return Accepted(sid=f"SM{message.to[-4:]}", status="sent", segments=message.segments)


def test_a_sync_only_backend_keeps_the_thread_path_one_instance_per_thread() -> None:
    ThreadNoting.seen = []
    recorded: list[int] = []
    dispatcher = Dispatcher(3, ThreadNoting, record_start=recorded.append)

    outcomes = dispatcher.send_all([SendRequest(i, f"+1415555{i:04d}", "hi", 1) for i in range(12)])

    assert [outcome.sid for outcome in outcomes] == [f"SM{i:04d}" for i in range(12)]
    assert sorted(recorded) == list(range(12))
    threads = {name for name, _ in ThreadNoting.seen}
    assert all(name.startswith("sms-send_") for name in threads)  # not the loop's thread
    # Each sending thread has its own instance: never one instance on two threads.
    threads_of: dict[int, set[str]] = {}
    for name, instance in ThreadNoting.seen:
        threads_of.setdefault(instance, set()).add(name)
    assert all(len(names) == 1 for names in threads_of.values())
