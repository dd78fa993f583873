"""GraphQL subscriptions: live delivery status over websockets.

``smsStatus(notificationIds)`` first sends each requested notification's current
status, then every change; ``myNotifications`` sends every change to the caller's
own notifications. Changes arrive through the channels layer (Redis), published
by ``notification.events`` from whichever process made them.

Ordering matters: the consumer joins the groups *before* reading the current
status, so a change committed between the two is never lost (it may be seen
twice; identical consecutive states are sent once).

Authorization is the queries' rule: your own notifications, or all of them with
``notification.view_notification``. The websocket consumer already refuses
anonymous sockets; the resolvers check again because the schema is shared.
"""

import datetime
from collections.abc import AsyncGenerator, Iterable
from typing import Any

import strawberry
from channels.db import database_sync_to_async
from strawberry.types import Info
from strawberry_django.auth.utils import aget_current_user

from notification.events import (
    STATUS_MESSAGE_TYPE,
    notification_group,
    status_payloads,
    user_group,
)
from notification.models import (
    DeliveryStatusChoices,
    Notification,
    NotificationStatusChoices,
)
from schema.enums import DeliveryStatus, NotificationStatus
from schema.permissions import LOGIN_REQUIRED_MESSAGE, VIEW_ALL_PERMISSION

#: Notifications one ``smsStatus`` subscription may watch (each is a Redis group).
MAX_WATCHED_NOTIFICATIONS = 100


@strawberry.type(
    name="SmsStatusEvent",
    description="A notification's status at one moment: sent on subscribing and on each change.",
)
class SmsStatusEvent:
    notification_id: strawberry.ID
    status: NotificationStatus
    delivery_status: DeliveryStatus
    error_code: int | None = strawberry.field(description="Twilio's error code, if any.")
    error_message: str = strawberry.field(description="What the error code means.")
    at: datetime.datetime | None = strawberry.field(description="When this status was reached.")

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> "SmsStatusEvent":
        at = payload.get("at")
        return cls(
            notification_id=strawberry.ID(str(payload["notificationId"])),
            status=NotificationStatusChoices(payload["status"]),  # type: ignore[arg-type]
            delivery_status=DeliveryStatusChoices(payload["deliveryStatus"]),  # type: ignore[arg-type]
            error_code=payload.get("errorCode"),
            error_message=payload.get("errorMessage") or "",
            at=datetime.datetime.fromisoformat(at) if at else None,
        )


def _state(payload: dict[str, Any]) -> tuple[Any, ...]:
    return (
        payload["status"],
        payload["deliveryStatus"],
        payload.get("errorCode"),
        payload.get("errorMessage"),
    )


def _parse_ids(notification_ids: Iterable[strawberry.ID] | None) -> list[int]:
    raw = list(notification_ids or [])
    if not raw:
        raise ValueError("notificationIds: give at least one notification id.")
    if len(raw) > MAX_WATCHED_NOTIFICATIONS:
        raise ValueError(
            f"notificationIds: at most {MAX_WATCHED_NOTIFICATIONS} notifications per subscription."
        )
    bad = [str(value) for value in raw if not str(value).isdigit()]
    if bad:
        raise ValueError(f"notificationIds: not a notification id: {', '.join(bad)}.")
    return sorted({int(value) for value in raw})


async def _logged_in_user(info: Info) -> Any:
    user = await aget_current_user(info)
    if not user.is_authenticated:
        raise PermissionError(LOGIN_REQUIRED_MESSAGE)
    return user


@database_sync_to_async
def _check_visible(user: Any, ids: list[int]) -> None:
    """Raise unless ``user`` may read every one of ``ids`` (missing ones included)."""
    queryset = Notification.objects.filter(pk__in=ids)
    if not user.has_perm(VIEW_ALL_PERMISSION):
        queryset = queryset.filter(user=user)
    visible = set(queryset.values_list("pk", flat=True))
    hidden = [str(pk) for pk in ids if pk not in visible]
    if hidden:
        # Same message for "does not exist" and "not yours": existence is not leaked.
        raise PermissionError(
            f"notificationIds: no notification {', '.join(hidden)} that you may watch."
        )


_current_payloads = database_sync_to_async(status_payloads)


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Each notification's current status, then every change as it happens. "
        "Only notifications you may read (yours, or all with notification.view_notification)."
    )
    async def sms_status(
        self, info: Info, notification_ids: list[strawberry.ID] | None
    ) -> AsyncGenerator[SmsStatusEvent, None]:
        user = await _logged_in_user(info)
        ids = _parse_ids(notification_ids)
        await _check_visible(user, ids)
        wanted = {str(pk) for pk in ids}
        last: dict[str, tuple[Any, ...]] = {}
        consumer = info.context["ws"]
        groups = [notification_group(pk) for pk in ids]
        async with consumer.listen_to_channel(STATUS_MESSAGE_TYPE, groups=groups) as messages:
            # Joined the groups first: nothing committed from here on can be missed.
            current = sorted(await _current_payloads(ids), key=lambda p: int(p["notificationId"]))
            for payload in current:
                last[payload["notificationId"]] = _state(payload)
                yield SmsStatusEvent.from_payload(payload)
            async for message in messages:
                # One consumer serves every subscription of its socket: keep ours only.
                notification_id = str(message["notificationId"])
                if notification_id not in wanted or last.get(notification_id) == _state(message):
                    continue
                last[notification_id] = _state(message)
                yield SmsStatusEvent.from_payload(message)

    @strawberry.subscription(
        description="Every status change of your own notifications, for an inbox view."
    )
    async def my_notifications(self, info: Info) -> AsyncGenerator[SmsStatusEvent, None]:
        user = await _logged_in_user(info)
        consumer = info.context["ws"]
        async with consumer.listen_to_channel(
            STATUS_MESSAGE_TYPE, groups=[user_group(user.pk)]
        ) as messages:
            async for message in messages:
                if message.get("userId") == user.pk:
                    yield SmsStatusEvent.from_payload(message)
