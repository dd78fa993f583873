"""The direct send lane: a status event's message encoded once, written to each subscriber.

At 1,000 subscribers of one notification, each published change cost every
subscription a task switch and strawberry's whole per-event chain: graphql-core's
``map_async_iterable``, the (shared) execution, strawberry's
``_handle_execution_result`` and extension hooks, ``send_next``, the message dict
and its JSON (README, "Profiling notes"): 62 ms of server CPU per change against
the bare-socket floor's 14 ms. None of it depends on the subscriber when the
selection is plain data of ``SmsStatusEvent`` (``notificationId``, ``status``,
...): the ``data`` JSON is the same bytes for every subscriber of the same
selection (``ws.frames``), and only the operation ``id`` differs. So a subscription
resolver asks ``direct_lane`` for a lane; the lane writes
``{"id":…,"type":"next","payload":{"data":…}}`` (``data`` for the legacy protocol)
straight to the socket's ASGI ``send``, and once the current status is sent it
takes each new message as ``StatusListeners.deliver`` receives it
(``Listener.direct``): one pass over the subscribers, with no task woken.

What stays exactly as on strawberry's path:

* ownership: the resolver's permission check runs before the lane writes
  anything, and the lane runs the resolver's own filter (``accept``) on each
  message; a socket closing for lost authority (``ws_guard``) or an operation
  the client completed is no longer ``open``, and the lane writes nothing more;
* order: one writer at a time per subscription (see ``DirectLane``);
* a client that stops reading: its write waits in a task of its own, later
  messages queue on its listener, and past ``GRAPHQL_WS_MAX_QUEUED_EVENTS`` the
  subscription ends with ``too_slow`` as before; the other sockets do not wait;
* errors: the lane never writes one. An event it cannot produce exactly (a null
  in a non-null field, a value its type refuses) goes back to the resolver, which
  yields it to strawberry's path, and the lane stands aside from then on.

Only a selection the lane reproduces byte for byte takes it (``frames.plan_of``),
under a schema with no extension or execution context the lane does not know (a
host's tracing extension adds ``extensions`` to each result: such a schema keeps
strawberry's path). Tests compare the lane's bytes with strawberry's.
"""

import asyncio
import contextlib
import contextvars
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterator
from typing import Any

from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry_django.optimizer import DjangoOptimizerExtension

from notification import instruments
from notification.graphql.optimizer_hints import CachedHintsOptimizer
from notification.graphql.query_limits import QueryLimits
from notification.graphql.ws.authority import ParseAndValidateInThread
from notification.graphql.ws.frames import (
    event_data,
    legacy_head,
    message_text,
    plan_of,
    selection_of,
    transport_head,
)
from notification.graphql.ws.wire import frame_of, wire_of

logger = logging.getLogger(__name__)

#: Schema extensions that add nothing to a subscription's results (no ``extensions``
#: entry, no rewritten data): anything else keeps strawberry's path.
_NEUTRAL_EXTENSIONS = frozenset(
    {QueryLimits, DjangoOptimizerExtension, CachedHintsOptimizer, ParseAndValidateInThread}
)


class _Target:
    """Where one operation's messages go: its socket, its message head, whether it is open.

    Open means the operation is still the handler's (a client's ``complete`` or ``stop``
    removes it before its task is cancelled) and the socket is not closing (``ws_guard``
    closes it for lost authority): only then may the lane write for it. ``wire``: the
    socket's transport when frames may be written to it directly (``ws.wire``).
    """

    __slots__ = ("consumer", "handler", "head", "operation", "wire")

    def __init__(self, handler: Any, head: str, operation: Any) -> None:
        self.handler = handler
        self.consumer = handler.websocket.ws_consumer
        self.head = head
        self.operation = operation
        # Operations run after the handshake: the socket's extensions are known.
        self.wire = wire_of(self.consumer.base_send)

    def is_open(self) -> bool:
        if getattr(self.consumer, "_closing", False):
            return False
        operation = self.operation
        if isinstance(operation, str):  # the legacy protocol: an operation is its id
            return operation in self.handler.subscriptions
        return self.handler.operations.get(operation.id) is operation and not operation.completed


_target: contextvars.ContextVar[_Target | None] = contextvars.ContextVar(
    "notification_ws_lane_target", default=None
)


class LaneTransportWSHandler(BaseGraphQLTransportWSHandler):
    """strawberry's graphql-transport-ws handler, telling each operation's task its target."""

    async def run_operation(self, operation: Any) -> None:
        _target.set(_Target(self, transport_head(operation.id), operation))
        await super().run_operation(operation)


class LaneWSHandler(BaseGraphQLWSHandler):
    """strawberry's legacy graphql-ws handler, telling each operation's task its target."""

    async def handle_async_results(
        self,
        operation_id: str,
        query: str,
        operation_name: str | None,
        variables: dict[str, object] | None,
    ) -> None:
        _target.set(_Target(self, legacy_head(operation_id), operation_id))
        await super().handle_async_results(operation_id, query, operation_name, variables)


class DirectLane:
    """Writes one subscription's events straight to its socket (see the module).

    Two ways in, one order: ``send`` from the operation's task (the current status,
    and every message that was queued), and ``offer`` from ``StatusListeners.deliver``
    for a message arriving while nothing is queued, no write is pending and the task
    is not sending, so the task is not even woken. A write the socket cannot take at
    once (the client is not reading) finishes in a task of its own (``_writing``);
    until it has, messages queue for the subscription's task, which waits for it
    before writing the next.
    Once the lane hands an event back to strawberry's path it is ``_detached`` for
    good: two writers could otherwise reorder events.
    """

    __slots__ = (
        "_accept",
        "_detached",
        "_event_of",
        "_listener",
        "_selection",
        "_sending",
        "_target",
        "_writing",
    )

    def __init__(self, target: _Target, root: str, plan: tuple, listener: Any) -> None:
        self._target = target
        self._selection = selection_of(root, plan)
        self._listener = listener
        self._writing: asyncio.Future | None = None
        self._sending = False
        self._detached = False
        self._accept: Callable[[dict[str, Any]], bool] | None = None
        self._event_of: Callable[[dict[str, Any]], Any] | None = None

    async def send(self, event: Any) -> bool:
        """Write ``event``'s message; False when it must take strawberry's path instead.

        ``_sending`` while it runs: the task took this message off the queue, so the
        queue may look empty, and a message ``offer`` wrote meanwhile (while this one
        waits for an earlier write) would overtake it.
        """
        self._sending = True
        try:
            if self._writing is not None:
                await self._writing
            data = None if self._detached else self._data(event)
            if data is None:
                self.detach()
                return False
            pending = self._write(data)
            if pending is not None:
                await pending
            return True
        finally:
            self._sending = False

    def attach(
        self, accept: Callable[[dict[str, Any]], bool], event_of: Callable[[dict[str, Any]], Any]
    ) -> None:
        """From now on take messages as they arrive: ``accept`` is the subscription's own
        filter (it records what was sent), ``event_of`` makes the event of a message."""
        self._accept = accept
        self._event_of = event_of
        if not self._detached:
            self._listener.direct = self.offer

    def shares_frames(self) -> bool:
        """Whether this socket can take the frames built once per change (``ws.wire``)."""
        return self._target.wire is not None

    def detach(self) -> None:
        self._detached = True
        self._listener.direct = None

    def offer(self, message: dict[str, Any]) -> bool:
        """``Listener.direct``: write ``message`` now if the task would; never raises."""
        if self._detached or self._sending or self._writing is not None:
            return False
        try:
            data = self._data(self._event_of(message))  # type: ignore[misc]
        except Exception:
            data = None
        if data is None:  # the task's path decides, and reports any error
            return False
        try:
            if self._accept(message):  # type: ignore[misc]
                self._write(data)
        except OSError:  # the client went away (uvicorn's ClientDisconnected): it closes
            self.detach()
        except Exception:
            logger.exception("Could not write a status event to a websocket")
            self.detach()
        return True

    def _data(self, event: Any) -> str | None:
        if not self._target.is_open():
            return None
        return event_data(event, self._selection)

    def _write(self, data: str) -> asyncio.Future | None:
        """Start writing; None if done at once, else the future that finishes it.

        The shared frame bytes go straight to the transport when uvicorn's ``send``
        would write at once (``ws.wire``); otherwise through ``send``."""
        target = self._target
        if target.wire is not None and target.wire.write(frame_of(target.head, data)):
            return None
        message = {"type": "websocket.send", "text": message_text(target.head, data)}
        # channels' ``send`` builds the same message for the same ASGI send.
        pending = start_eagerly(target.consumer.base_send(message))
        if pending is not None:
            self._writing = pending
            pending.add_done_callback(self._written)
        return pending

    def _written(self, pending: asyncio.Future) -> None:
        if self._writing is pending:
            self._writing = None
        if not pending.cancelled() and pending.exception() is not None:
            self.detach()  # the socket is gone: strawberry's path meets the error


def start_eagerly(awaitable: Awaitable[Any]) -> asyncio.Future | None:
    """Run ``awaitable`` up to its first suspension now; None if it finished, else a
    task finishing it (Python 3.12's eager tasks, for one coroutine).

    Writing to a socket that can take the bytes never suspends, so a thousand
    subscribers' messages are written in one pass of the loop, without a task
    switch each; a socket that cannot take them suspends its own write only.
    Exceptions raised before the first suspension propagate to the caller.
    """
    if not asyncio.iscoroutine(awaitable):
        return asyncio.ensure_future(awaitable)
    try:
        suspended_on = awaitable.send(None)
    except StopIteration:
        return None
    return asyncio.ensure_future(_Resumed(awaitable, suspended_on))


class _Resumed:
    """The rest of a coroutine already started: first waits for what it suspended on."""

    __slots__ = ("_coroutine", "_first")

    def __init__(self, coroutine: Coroutine[Any, Any, Any], first: Any) -> None:
        self._coroutine = coroutine
        self._first = first

    def __await__(self) -> Generator[Any, None, Any]:
        coroutine, pending = self._coroutine, self._first
        while True:
            try:
                yield pending
            except BaseException as error:  # cancelled: the coroutine gets it
                step = functools.partial(coroutine.throw, error)
            else:
                step = functools.partial(coroutine.send, None)
            try:
                pending = step()
            except StopIteration as stop:
                return stop.value


@contextlib.contextmanager
def direct_lane(
    info: Any, execution_context_class: type, listener: Any
) -> Iterator[DirectLane | None]:
    """A lane for this subscription while it runs, or None when strawberry's path must
    send its events (counted in ``sms_subscribers_direct`` while open, and in
    ``sms_subscribers_direct_frames`` when its socket takes shared frames). Detached on
    the way out, before the listener is left: nothing is written after that.

    ``execution_context_class``: the one the lane stands in for; a schema executing
    with another (a host's subclass) keeps strawberry's path.
    """
    lane = _lane_for(info, execution_context_class, listener)
    if lane is None:
        yield None
        return
    shared_frames = lane.shares_frames()
    instruments.direct_subscription_opened(shared_frames)
    try:
        yield lane
    finally:
        lane.detach()
        instruments.direct_subscription_closed(shared_frames)


def _lane_for(info: Any, execution_context_class: type, listener: Any) -> DirectLane | None:
    target = _target.get()
    if target is None:
        return None
    schema = info.schema
    if schema.execution_context_class is not execution_context_class:
        return None
    for extension in schema.extensions:
        kind = extension if isinstance(extension, type) else type(extension)
        if kind not in _NEUTRAL_EXTENSIONS:
            return None
    raw = info._raw_info
    plan = plan_of(raw)
    if plan is None:
        return None
    alias = raw.field_nodes[0].alias
    return DirectLane(target, alias.value if alias else raw.field_name, plan, listener)
