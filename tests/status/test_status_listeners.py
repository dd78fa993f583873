"""The process's status listeners on the real Redis channel layer: bounded queues, one
receiver of its own, each group joined once however many listeners share it."""

import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from notification.connections import group_send_many
from notification.status.events import (
    DELIVER_CHUNK,
    Listener,
    ListenerDropped,
    StatusListeners,
    _receiving_layer,
)
from tests.support.layer_helpers import group_size
from tests.support.settings_helpers import set_sms

pytestmark = pytest.mark.usefixtures("redis")


def test_a_listener_that_does_not_read_is_dropped_not_buffered(settings):
    set_sms(settings, GRAPHQL_WS_MAX_QUEUED_EVENTS=5)

    async def scenario() -> None:
        listeners = StatusListeners(_receiving_layer())
        async with (
            listeners.listen(["g-slow"]) as slow,
            listeners.listen(["g-slow"]) as reader,
        ):
            for number in range(8):
                listeners.deliver({"type": "x", "group": "g-slow", "n": number})
                assert (await reader.get())["n"] == number  # a reader keeps up
            # The slow one gets what fitted, then the error; nothing more is kept for it.
            assert [(await slow.get())["n"] for _ in range(5)] == [0, 1, 2, 3, 4]
            with pytest.raises(ListenerDropped):
                await slow.get()
            listeners.deliver({"type": "x", "group": "g-slow", "n": 8})
            assert (await reader.get())["n"] == 8
            assert listeners.listener_count() == 1

    async_to_sync(scenario)()


def test_many_listeners_of_one_group_join_it_once_and_leave_it_with_the_last():
    async def scenario() -> None:
        listeners = StatusListeners(_receiving_layer())
        entered = []
        async with listeners.listen(["g-shared"]) as first:
            entered.append(first)
            contexts = [listeners.listen(["g-shared"]) for _ in range(200)]
            others = await asyncio.gather(*(context.__aenter__() for context in contexts))
            assert await asyncio.to_thread(group_size, "g-shared") == 1
            # A message sent through the project's layer reaches every listener.
            await get_channel_layer().group_send("g-shared", {"type": "x", "group": "g-shared"})
            for listener in [first, *others]:
                assert (await asyncio.wait_for(listener.get(), 10))["group"] == "g-shared"
            for context in contexts:
                await context.__aexit__(None, None, None)
            assert await asyncio.to_thread(group_size, "g-shared") == 1
        assert await asyncio.to_thread(group_size, "g-shared") == 0

    async_to_sync(scenario)()


def test_the_listeners_receive_on_a_layer_instance_of_their_own():
    """No websocket consumer's (cancellable) receive shares its process channel."""
    layer = get_channel_layer()
    own = _receiving_layer()
    assert own is not layer
    assert own.client_prefix != layer.client_prefix


def test_a_batch_of_group_sends_reaches_exactly_each_groups_members():
    """``layer_send.group_send_many`` (the publish path): two processes' listeners, a
    plain channel, a group with no member; each gets its groups' messages, once,
    as ``group_send`` would have delivered them."""

    async def scenario() -> None:
        one, two = StatusListeners(_receiving_layer()), StatusListeners(_receiving_layer())
        layer = get_channel_layer()
        plain = await layer.new_channel("plain.")
        await layer.group_add("g-batch-b", plain)
        async with (
            one.listen(["g-batch-a", "g-batch-b"]) as first,
            two.listen(["g-batch-a"]) as second,
        ):
            await group_send_many(
                layer,
                [
                    ("g-batch-a", {"type": "x", "group": "g-batch-a", "n": 1}),
                    ("g-batch-nobody", {"type": "x", "group": "g-batch-nobody", "n": 2}),
                    ("g-batch-b", {"type": "x", "group": "g-batch-b", "n": 3}),
                ],
            )
            got_first = [await asyncio.wait_for(first.get(), 10) for _ in range(2)]
            assert sorted(message["n"] for message in got_first) == [1, 3]
            assert (await asyncio.wait_for(second.get(), 10)) == {
                "type": "x",
                "group": "g-batch-a",
                "n": 1,
            }
            assert await asyncio.wait_for(layer.receive(plain), 10) == {
                "type": "x",
                "group": "g-batch-b",
                "n": 3,
            }
            one.deliver({"type": "x", "group": "g-batch-a", "n": 4})  # nothing else queued
            assert (await asyncio.wait_for(first.get(), 10))["n"] == 4
        await layer.group_discard("g-batch-b", plain)

    async_to_sync(scenario)()


def test_a_direct_hook_takes_messages_only_while_nothing_is_queued():
    """``Listener.direct`` (the websocket lane) must never overtake a queued message."""

    async def scenario() -> None:
        listeners = StatusListeners(_receiving_layer())
        taken: list[int] = []
        willing = True

        def direct(message: dict) -> bool:
            if willing:
                taken.append(message["n"])
            return willing

        async with listeners.listen(["g-direct"]) as listener:
            listener.direct = direct
            listeners.deliver({"type": "x", "group": "g-direct", "n": 0})
            willing = False  # busy (a write pending): the message is queued
            listeners.deliver({"type": "x", "group": "g-direct", "n": 1})
            willing = True  # free again, but message 1 still waits for the task
            listeners.deliver({"type": "x", "group": "g-direct", "n": 2})
            assert taken == [0]
            assert [(await listener.get())["n"] for _ in range(2)] == [1, 2]
            listeners.deliver({"type": "x", "group": "g-direct", "n": 3})
            assert taken == [0, 3]

    async_to_sync(scenario)()


def test_a_large_group_gets_each_message_in_order_with_the_loop_running_between_chunks():
    """``deliver_in_chunks`` (the receive loop's): more listeners than ``DELIVER_CHUNK``
    four times over, messages through Redis. Each listener gets each message once and in
    order; other work runs between chunks (a chunk, not the whole pass, holds the
    loop); a listener that leaves during a pass gets nothing more."""

    async def scenario() -> None:
        listeners = StatusListeners(_receiving_layer())
        contexts = [listeners.listen(["g-chunks"]) for _ in range(4 * DELIVER_CHUNK + 200)]
        members = [await context.__aenter__() for context in contexts]
        got: dict[Listener, list[tuple[int, int]]] = {member: [] for member in members}
        other_work: list[str] = []

        for member in members:
            member.direct = lambda message, member=member: (
                not got[member].append((message["n"], len(other_work)))
            )
        # The pass's order is the group's set order: the last member is in the last chunk.
        leaver = tuple(listeners._listeners["g-chunks"])[-1]
        leaving = contexts[members.index(leaver)]

        # Both wait for the loop: they run once the first chunk has been offered.
        asyncio.get_running_loop().call_soon(other_work.append, "ran")
        left = asyncio.create_task(leaving.__aexit__(None, None, None))
        await listeners.deliver_in_chunks({"type": "x", "group": "g-chunks", "n": 0})
        offered_before = sorted(seen[0][1] for seen in got.values() if seen)
        assert offered_before.count(0) == DELIVER_CHUNK  # the first chunk, before the work
        assert got[leaver] == [] and len(offered_before) == len(members) - 1
        await left

        layer = get_channel_layer()
        for number in (1, 2, 3):
            await layer.group_send("g-chunks", {"type": "x", "group": "g-chunks", "n": number})
        stayers = [member for member in members if member is not leaver]
        for _attempt in range(500):
            if all(len(got[member]) == 4 for member in stayers):
                break
            await asyncio.sleep(0.01)
        assert all([n for n, _ in got[member]] == [0, 1, 2, 3] for member in stayers)
        assert got[leaver] == []
        for context in contexts:
            if context is not leaving:
                await context.__aexit__(None, None, None)

    async_to_sync(scenario)()
