"""``ws.lane``: ``start_eagerly`` runs a write at once (a task only for one that must wait), and
the lane keeps one order when a write waits (in process, against a pausable ASGI send)."""

import asyncio
import json
from types import SimpleNamespace

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


class PausableSocket:
    """Stands in for the ASGI server's side of one websocket: takes each frame at once,
    or, while paused (the client not reading), makes the write wait."""

    def __init__(self) -> None:
        self.frames: list[str] = []
        self.writable = asyncio.Event()
        self.writable.set()
        self._closing = False

    async def base_send(self, message: dict) -> None:
        await self.writable.wait()
        self.frames.append(message["text"])


def test_a_message_offered_while_the_task_waits_to_send_does_not_overtake_it():
    """M1 is written by ``offer`` but must wait; M2 queues and the subscription's task
    takes it and waits for M1's write; M3 arrives the moment M1's write ends, before the
    task has written M2: M3 must queue behind M2, not be written first."""
    from graphql import GraphQLString

    from notification.graphql.ws.lane import DirectLane, _Target
    from notification.status.events import Listener

    async def scenario() -> list[int]:
        socket = PausableSocket()
        operation = SimpleNamespace(id="1", completed=False)
        handler = SimpleNamespace(
            websocket=SimpleNamespace(ws_consumer=socket), operations={"1": operation}
        )
        listener = Listener(100)
        plan = (("n", "n", GraphQLString, True),)
        lane = DirectLane(
            _Target(handler, '{"id":"1","payload":{"data":', operation), "s", plan, listener
        )
        events: dict[int, SimpleNamespace] = {}

        def event_of(message: dict) -> SimpleNamespace:
            return events.setdefault(message["n"], SimpleNamespace(n=str(message["n"])))

        lane.attach(lambda message: True, event_of)

        async def subscription_task() -> None:
            while True:
                await lane.send(event_of(await listener.get()))

        socket.writable.clear()
        assert listener.offer({"n": 1})  # written by the lane, but the write waits
        pending = lane._writing
        assert pending is not None
        # Runs after the lane learns M1 is written and before the task resumes.
        pending.add_done_callback(lambda _done: listener.offer({"n": 3}))
        assert listener.offer({"n": 2})  # queued: a write is pending
        task = asyncio.create_task(subscription_task())
        await asyncio.sleep(0)  # the task takes M2 and waits for M1's write
        socket.writable.set()
        for _ in range(10):
            await asyncio.sleep(0)
        task.cancel()
        return [json.loads(frame)["payload"]["data"]["s"]["n"] for frame in socket.frames]

    assert asyncio.run(scenario()) == ["1", "2", "3"]
