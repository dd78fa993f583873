"""``ws.wire``: shared frame bytes written straight to uvicorn's websocket transport.

A real uvicorn (its sans-I/O websockets protocol, as ``--ws auto`` picks with
websockets installed) serves a small ASGI app in this process, and a real
websockets client reads what it wrote: the frames must be the messages ``send``
would have written, in the order written, and the wire must stand aside wherever
``send`` has to decide (compression, a wrapped ``send``, a paused or closed socket).
"""

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import uvicorn
from websockets.asyncio.client import connect
from websockets.frames import Frame, Opcode

from notification.graphql.ws.wire import frame_of, wire_of

Scenario = Callable[[Any, Any], Awaitable[None]]


@contextlib.asynccontextmanager
async def served(scenario: Scenario, deflate: bool, wrap: bool = False) -> AsyncIterator[str]:
    """uvicorn serving one websocket app: accept, then ``scenario(send, receive)``, which
    returns once the client has gone (``until_gone``)."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "websocket"
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})

        async def wrapped(message: dict[str, Any]) -> None:
            await send(message)

        await scenario(wrapped if wrap else send, receive)

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app,
        ws="websockets-sansio",
        ws_per_message_deflate=deflate,
        lifespan="off",
        log_level="warning",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"ws://127.0.0.1:{sock.getsockname()[1]}/"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def until_gone(receive: Any) -> None:
    while (await receive())["type"] != "websocket.disconnect":
        pass


def run(coro: Awaitable[None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 20))  # type: ignore[arg-type]


def message(index: int) -> tuple[str, str]:
    """(head, data) of a lane message, as ``DirectLane`` writes them."""
    return '{"id":"1","type":"next","payload":{"data":', json.dumps({"n": index})


def test_frames_written_directly_interleave_in_order_with_sends():
    outcome: dict[str, Any] = {}

    async def scenario(send: Any, receive: Any) -> None:
        wire = wire_of(send)
        outcome["wire"] = wire
        for index in range(6):
            head, data = message(index)
            if index % 2 and wire is not None:
                outcome.setdefault("written", []).append(wire.write(frame_of(head, data)))
            else:
                await send({"type": "websocket.send", "text": head + data + "}}"})
        await until_gone(receive)

    async def main() -> None:
        async with (
            served(scenario, deflate=False) as url,
            connect(url, compression=None, proxy=None) as ws,
        ):
            got = [await ws.recv() for _ in range(6)]
        assert outcome["wire"] is not None
        assert outcome["written"] == [True, True, True]
        assert got == ["".join(message(index)) + "}}" for index in range(6)]

    run(main())


def test_a_frame_is_websockets_own_serialisation_built_once_per_text_and_head():
    head, data = message(1)
    frame = frame_of(head, data)
    expected = Frame(Opcode.TEXT, (head + data + "}}").encode()).serialize(
        mask=False, extensions=[]
    )
    assert frame == expected
    assert frame_of(head, data) is frame  # shared by every subscriber of the change
    other_head = '{"id":"2","type":"next","payload":{"data":'
    assert frame_of(other_head, data) == Frame(
        Opcode.TEXT, (other_head + data + "}}").encode()
    ).serialize(mask=False, extensions=[])
    # A long message takes websockets' 16-bit length form: the same rule, not ours.
    long_data = json.dumps({"n": "x" * 300})
    assert frame_of(head, long_data) == Frame(
        Opcode.TEXT, (head + long_data + "}}").encode()
    ).serialize(mask=False, extensions=[])


@pytest.mark.parametrize("case", ["deflate", "wrapped send"])
def test_no_wire_when_send_must_write_itself(case):
    outcome: dict[str, Any] = {}

    async def scenario(send: Any, receive: Any) -> None:
        outcome["wire"] = wire_of(send)
        await send({"type": "websocket.send", "text": "hello"})
        await until_gone(receive)

    async def main() -> None:
        deflate = case == "deflate"
        async with (
            served(scenario, deflate=deflate, wrap=not deflate) as url,
            connect(url, compression="deflate", proxy=None) as ws,
        ):
            assert await ws.recv() == "hello"
            assert (ws.protocol.extensions != []) is deflate
        assert outcome["wire"] is None

    run(main())


def test_a_paused_or_closed_socket_is_left_to_send():
    outcome: dict[str, Any] = {}

    async def scenario(send: Any, receive: Any) -> None:
        wire = wire_of(send)
        protocol = send.__self__
        head, data = message(0)
        # The transport's own signal past its high-water mark (a client not reading).
        protocol.pause_writing()
        outcome["paused"] = wire.write(frame_of(head, data))
        protocol.resume_writing()
        outcome["resumed"] = wire.write(frame_of(head, data))
        await until_gone(receive)
        outcome["closed"] = wire.write(frame_of(head, data))

    async def main() -> None:
        async with served(scenario, deflate=False) as url:
            async with connect(url, compression=None, proxy=None) as ws:
                assert await ws.recv() == "".join(message(0)) + "}}"
            for _attempt in range(200):
                if "closed" in outcome:
                    break
                await asyncio.sleep(0.01)
        assert outcome == {"paused": False, "resumed": True, "closed": False}

    run(main())
