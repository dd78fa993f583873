"""``ws.lane.start_eagerly``: a write runs at once, and only one that must wait gets a task."""

import asyncio

import pytest

from notification.graphql.ws.lane import start_eagerly


async def write(log: list[str], gate: asyncio.Event) -> str:
    log.append("started")
    await gate.wait()
    log.append("finished")
    return "written"


def test_a_coroutine_that_need_not_wait_finishes_before_start_eagerly_returns():
    async def scenario() -> None:
        log: list[str] = []
        gate = asyncio.Event()
        gate.set()
        assert start_eagerly(write(log, gate)) is None
        assert log == ["started", "finished"]

    asyncio.run(scenario())


def test_a_coroutine_that_waits_is_finished_by_a_task_with_its_result():
    async def scenario() -> None:
        log: list[str] = []
        gate = asyncio.Event()
        pending = start_eagerly(write(log, gate))
        assert pending is not None
        assert log == ["started"]  # ran up to its wait, in the caller
        gate.set()
        assert await asyncio.wait_for(pending, 5) == "written"
        assert log == ["started", "finished"]

    asyncio.run(scenario())


def test_cancelling_the_task_cancels_the_waiting_coroutine():
    async def scenario() -> None:
        log: list[str] = []
        gate = asyncio.Event()
        pending = start_eagerly(write(log, gate))
        assert pending is not None
        await asyncio.sleep(0)
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending
        gate.set()
        await asyncio.sleep(0)
        assert log == ["started"]  # it never went on past its wait
        assert not gate._waiters  # and left the event's waiters (no leak)

    asyncio.run(scenario())


def test_an_error_before_the_first_wait_reaches_the_caller():
    async def fails() -> None:
        raise ConnectionResetError("gone")

    async def scenario() -> None:
        with pytest.raises(ConnectionResetError):
            start_eagerly(fails())

    asyncio.run(scenario())
