"""GraphQL subscriptions: live delivery status over websockets.

``smsStatus(notificationIds)`` first sends each requested notification's current
status, then every change; ``myNotifications`` sends every change to the caller's
own notifications. Changes arrive through the channels layer (Redis), published
by ``notification.status.events`` from whichever process made them.

Ordering matters: the consumer joins the groups *before* reading the current
status, so a change committed between the two is never lost (it may be seen
twice; identical consecutive states are sent once). Publishes from different
processes can overtake each other (the worker's "queued", read just before the
webhook stored "sent", may reach Redis after the webhook's "sent"), so a
message whose delivery status is behind the last one sent is dropped
(``_is_behind``): what a subscriber sees only moves forward, as the stored
status does.

Authorization is the queries' rule (``notification.graphql.filters.visible_to``): your own
notifications (addressed to you or created by you), or all of them with
``notification.view_notification``. The websocket consumer already refuses
anonymous sockets; the resolvers check again because the schema is shared.

Fan-out cost: one published change reaches every subscriber of the notification
in this process, and with 1,000 subscribers per-subscriber work is what counts.
A subscription whose selection is plain data of ``SmsStatusEvent`` (the common
case) takes the direct send lane (``ws.lane``): its events are written straight
to the socket, the ``data`` JSON encoded once per event and selection, and new
changes are written as they arrive without waking the subscription's task; the
resolver's filter (``_StatusFilter``, ``_InboxFilter``) decides what is sent on
both paths. Any other selection takes strawberry's path, where each subscriber's
resolver yields the *same* ``SmsStatusEvent`` instance for the same change
(``SmsStatusEvent.from_payload`` interns them), and ``SharedEventExecutionContext``
executes the selection set once per event and query text instead of once per
subscriber (see its docstring for why that is safe for this type).
"""

import datetime
import json
from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable, Iterable
from typing import Any

import strawberry
from graphql import GraphQLError, print_ast
from strawberry.types import Info

from notification.connections import run_in_db_thread
from notification.delivery import is_behind, status_payloads
from notification.graphql import types as graphql_types
from notification.graphql.execution import PlainFieldExecutionContext
from notification.graphql.filters import (
    LOGIN_REQUIRED_MESSAGE,
    DeliveryStatus,
    NotificationStatus,
    visible_to,
)
from notification.graphql.ws.lane import DirectLane, direct_lane
from notification.models import DeliveryStatusChoices, Notification, NotificationStatusChoices
from notification.status.events import (
    Listener,
    ListenerDropped,
    notification_group,
    status_listeners,
    user_group,
)
from notification.values import parse_database_id

#: Notifications one ``smsStatus`` subscription may watch (each is a Redis group).
MAX_WATCHED_NOTIFICATIONS = 100
#: Distinct recent events kept for sharing between subscribers.
_SHARED_EVENTS_KEPT = 1024


@strawberry.type(
    name="SmsStatusEvent",
    description="A notification's status at one moment: sent on subscribing and on each change.",
)
class SmsStatusEvent:
    """Data that is the same for every subscriber: ``SharedEventExecutionContext`` shares
    one execution between subscribers, which is only right while no field depends on
    who is asking."""

    notification_id: strawberry.ID
    status: NotificationStatus
    delivery_status: DeliveryStatus
    error_code: int | None = strawberry.field(description="Twilio's error code, if any.")
    error_message: str = strawberry.field(description="What the error code means.")
    at: datetime.datetime | None = strawberry.field(description="When this status was reached.")

    @strawberry.field(
        description="The notification as it is now (id, status, sms): a normalized client "
        "cache (Apollo, urql) updates the notification it holds from this object, by id, "
        "with no hand-written cache code. Null once the notification is deleted."
    )
    async def notification(self) -> graphql_types.Notification | None:
        # Loaded once per event and query text, shared by every subscriber
        # (SharedEventExecutionContext): no field of Notification depends on who asks.
        row = await run_in_db_thread(_current_notification, int(self.notification_id))
        return row  # type: ignore[return-value]  # strawberry_django resolves the model row

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> "SmsStatusEvent":
        """The event for a published payload: one shared instance per distinct state.

        The same payload object reaches every subscriber of a change in turn
        (``StatusListeners.deliver``), so the last one's event is kept at hand.
        """
        if payload is _last_payload[0]:
            return _last_payload[1]
        key = (str(payload["notification_id"]), *_state(payload), payload.get("at"))
        event = _shared_events.get(key)
        if event is None:
            at = payload.get("at")
            event = cls(
                notification_id=strawberry.ID(key[0]),
                status=NotificationStatusChoices(payload["status"]),
                delivery_status=DeliveryStatusChoices(payload["delivery_status"]),
                error_code=payload.get("error_code"),
                error_message=payload.get("error_message") or "",
                at=datetime.datetime.fromisoformat(at) if at else None,
            )
            _shared_events[key] = event
            if len(_shared_events) > _SHARED_EVENTS_KEPT:
                _shared_events.popitem(last=False)
        # Holding the payload keeps its id from being reused by another one meanwhile.
        _last_payload[:] = [payload, event]
        return event


_shared_events: "OrderedDict[tuple, SmsStatusEvent]" = OrderedDict()
_last_payload: list[Any] = [None, None]
# Attribute of a shared event holding its execution result for each (query text,
# operation name, variables): the results live and die with the event.
_RESULTS_ATTRIBUTE = "_execution_results"


class _SharedEventExecution:
    """What graphql-core calls ``execute_operation`` on for one event of one subscription."""

    __slots__ = ("_context", "_event")

    def __init__(self, context: "SharedEventExecutionContext", event: SmsStatusEvent) -> None:
        self._context = context
        self._event = event

    def execute_operation(self, serially: bool | None = None) -> Any:
        return self._context.execute_shared(self._event, serially)


class SharedEventExecutionContext(PlainFieldExecutionContext):
    """Executes a subscription event once for all subscriptions with the same query.

    graphql-core executes the selection set of a subscription anew for every
    event of every subscription; at 1,000 subscribers that was a third of the
    server's CPU per published change. For an ``SmsStatusEvent`` the result
    depends only on the event and on the operation (its text, name and
    variables): its fields are plain data or, for ``notification``, the
    notification's row, which no field renders differently per viewer; and
    authorization happened when the subscription started. So the result is
    computed for the first subscriber and reused, stored on the (interned, hence
    identical) event object, so it is dropped with the event. Every other value
    (and queries and mutations) goes through graphql-core as usual.
    """

    def build_per_event_executor(self, payload: Any) -> Any:
        if isinstance(payload, SmsStatusEvent):
            return _SharedEventExecution(self, payload)
        return super().build_per_event_executor(payload)

    def _operation_key(self) -> tuple:
        key = self.__dict__.get("_shared_operation_key")
        if key is None:
            operation = self.operation
            if operation.loc is not None:  # the whole document, fragments included
                text = operation.loc.source.body
            else:
                fragments = sorted(print_ast(f) for f in self.fragment_definitions.values())
                text = "\n".join([print_ast(operation), *fragments])
            name = operation.name.value if operation.name else None
            variables = json.dumps(self.variable_values.coerced, sort_keys=True, default=str)
            key = self.__dict__["_shared_operation_key"] = (text, name, variables)
        return key

    def execute_shared(self, event: SmsStatusEvent, serially: bool | None) -> Any:
        results = event.__dict__.setdefault(_RESULTS_ATTRIBUTE, {})
        key = self._operation_key()
        if key in results:
            return results[key]
        result = super().build_per_event_executor(event).execute_operation(serially)
        if not self.is_awaitable(result):
            results[key] = result
            return result

        async def store() -> Any:
            results[key] = outcome = await result
            return outcome

        return store()


def _state(payload: dict[str, Any]) -> tuple[Any, ...]:
    return (
        payload["status"],
        payload["delivery_status"],
        payload.get("error_code"),
        payload.get("error_message"),
    )


def _same_state(one: dict[str, Any], other: dict[str, Any]) -> bool:
    """``_state(one) == _state(other)``, the field most likely to differ compared first."""
    return (
        one["delivery_status"] == other["delivery_status"]
        and one["status"] == other["status"]
        and one.get("error_code") == other.get("error_code")
        and one.get("error_message") == other.get("error_message")
    )


def _is_behind(last: dict[str, Any] | None, message: dict[str, Any]) -> bool:
    """True for a message older than the last one sent (publishes can overtake each other).

    Delivery statuses only move forward for one Twilio message, so a lower rank
    is an older snapshot. The exception is "not submitted": a retry or a staff
    resend starts the message over, and that must get through.
    """
    if last is None or not message["delivery_status"]:
        return False
    return is_behind(message["delivery_status"], than=last["delivery_status"])


class _StatusFilter:
    """``smsStatus``: which changes to send, recording each one sent (``last``).

    Only the watched notifications; a state identical to the last one sent is sent
    once; an older one is dropped (``_is_behind``). Called for each message by the
    subscription's task or, in its place, by the direct lane (``ws.lane``).
    """

    __slots__ = ("last", "wanted")

    def __init__(self, wanted: set[str]) -> None:
        self.wanted = wanted
        self.last: dict[str, dict[str, Any]] = {}

    def __call__(self, message: dict[str, Any]) -> bool:
        notification_id = str(message["notification_id"])
        if notification_id not in self.wanted:
            return False
        previous = self.last.get(notification_id)
        if previous is not None and _same_state(previous, message):
            return False
        if _is_behind(previous, message):
            return False
        self.last[notification_id] = message
        return True


class _InboxFilter:
    """``myNotifications``: the caller's own notifications' changes, never an older one."""

    __slots__ = ("last", "user_id")

    def __init__(self, user_id: Any) -> None:
        self.user_id = user_id
        self.last: dict[str, dict[str, Any]] = {}

    def __call__(self, message: dict[str, Any]) -> bool:
        if self.user_id not in (message.get("user_id"), message.get("created_by_id")):
            return False
        notification_id = str(message["notification_id"])
        if _is_behind(self.last.get(notification_id), message):
            return False
        self.last[notification_id] = message
        return True


async def _next_message(listener: Listener) -> dict[str, Any]:
    """The listener's next change; a coded error once it was dropped for not keeping up."""
    try:
        return await listener.get()
    except ListenerDropped:
        raise GraphQLError(
            "This subscription fell too far behind (GRAPHQL_WS_MAX_QUEUED_EVENTS unsent "
            "changes) and was ended; subscribe again to get the current status.",
            extensions={"code": "too_slow"},
        ) from None


async def _sent_directly(lane: DirectLane | None, event: SmsStatusEvent) -> bool:
    """Whether the direct lane wrote ``event`` (``ws.lane``); if not, the resolver yields it."""
    return lane is not None and await lane.send(event)


async def _changes(
    messages: Listener, accept: Callable[[dict[str, Any]], bool], lane: DirectLane | None
) -> AsyncGenerator[SmsStatusEvent, None]:
    """The changes ``accept`` lets through, for the resolver to yield: the lane (once
    attached) writes the rest itself, as they arrive (``Listener.direct``)."""
    if lane is not None:
        lane.attach(accept, SmsStatusEvent.from_payload)
    while True:
        message = await _next_message(messages)
        if accept(message):
            event = SmsStatusEvent.from_payload(message)
            if not await _sent_directly(lane, event):
                yield event


def _invalid_ids(message: str) -> GraphQLError:
    """Bad ``notificationIds``: the client's error, with a code (logged as one line)."""
    return GraphQLError(message, extensions={"code": "invalid", "field": "notificationIds"})


def _parse_ids(notification_ids: Iterable[strawberry.ID] | None) -> list[int]:
    raw = list(notification_ids or [])
    if not raw:
        raise _invalid_ids("notificationIds: give at least one notification id.")
    if len(raw) > MAX_WATCHED_NOTIFICATIONS:
        raise _invalid_ids(
            f"notificationIds: at most {MAX_WATCHED_NOTIFICATIONS} notifications per subscription."
        )
    parsed = {str(value): parse_database_id(str(value)) for value in raw}
    bad = [value for value, pk in parsed.items() if pk is None]
    if bad:
        raise _invalid_ids(f"notificationIds: not a notification id: {', '.join(bad)}.")
    return sorted({pk for pk in parsed.values() if pk is not None})


def _logged_in_user(info: Info) -> Any:
    """The socket's user, loaded when it opened (``websocket.SessionUserMiddleware``)."""
    user = info.context["ws"].scope.get("user")
    if user is None or not user.is_authenticated:
        raise PermissionError(LOGIN_REQUIRED_MESSAGE)
    return user


def _current_notification(pk: int) -> Notification | None:
    """The notification row for an event's ``notification`` field (with its SMS: one query)."""
    return Notification.objects.select_related("sms").filter(pk=pk).first()


def _visible_current_payloads(user: Any, ids: list[int]) -> list[dict[str, Any]]:
    """The current status of ``ids``, or ``PermissionError`` unless ``user`` may read them all.

    One trip to the database thread for both (the check and the read).
    """
    queryset = visible_to(Notification.objects.filter(pk__in=ids), user)
    visible = set(queryset.values_list("pk", flat=True))
    hidden = [str(pk) for pk in ids if pk not in visible]
    if hidden:
        # Same message for "does not exist" and "not yours": existence is not leaked.
        raise PermissionError(
            f"notificationIds: no notification {', '.join(hidden)} that you may watch."
        )
    return sorted(status_payloads(ids), key=lambda payload: int(payload["notification_id"]))


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Each notification's current status, then every change as it happens. "
        "Only notifications you may read (yours, or all with notification.view_notification)."
    )
    async def sms_status(
        self, info: Info, notification_ids: list[strawberry.ID] | None
    ) -> AsyncGenerator[SmsStatusEvent, None]:
        user = _logged_in_user(info)
        ids = _parse_ids(notification_ids)
        groups = [notification_group(pk) for pk in ids]
        accept = _StatusFilter({str(pk) for pk in ids})
        async with status_listeners().listen(groups) as messages:
            with direct_lane(info, SharedEventExecutionContext, messages) as lane:
                # Joined the groups first: nothing committed from here on can be missed.
                # Nothing is sent before the permission check passes.
                for payload in await run_in_db_thread(_visible_current_payloads, user, ids):
                    accept.last[payload["notification_id"]] = payload
                    event = SmsStatusEvent.from_payload(payload)
                    if not await _sent_directly(lane, event):
                        yield event
                async for event in _changes(messages, accept, lane):
                    yield event

    @strawberry.subscription(
        description="Every status change of your own notifications (addressed to you or "
        "created by you), for an inbox view."
    )
    async def my_notifications(self, info: Info) -> AsyncGenerator[SmsStatusEvent, None]:
        user = _logged_in_user(info)
        accept = _InboxFilter(user.pk)
        async with status_listeners().listen([user_group(user.pk)]) as messages:
            with direct_lane(info, SharedEventExecutionContext, messages) as lane:
                async for event in _changes(messages, accept, lane):
                    yield event
