"""Filters for ``notifications(filters: ...)`` (strawberry-django lookups, AND/OR/NOT).

Text lookups offer no regular expressions: a pattern such as ``((.*)*)*x`` makes a
backtracking engine take exponential time (on SQLite, Python's ``re`` under the
GIL froze the whole process for seconds on a 13-character title), and no pattern
check tells every catastrophic pattern apart. ``contains``, ``startsWith`` and
``endsWith`` (SQL ``LIKE``) run in linear time.

Enums (was ``notification.graphql.enums``):

GraphQL enums, made from the model's Django choices so the two can never drift.

``strawberry.enum`` registers the choices class itself (it returns the same
class), so each name below is an alias of the model's choices: type checkers see
one type, and a model value is a valid GraphQL value without conversion.

Ordering (was ``notification.graphql.ordering``):

Ordering for ``notifications(order: [{priority: DESC}, {publishDatetime: ASC}])``.

A list of one-key objects (strawberry-django's ``order_type``, one_of): list order is
precedence, which survives JSON variables (the keys of one object would not). Without
``order`` the model's default holds: newest first.

Permissions (was ``notification.graphql.permissions``):

Who may see and do what: the rules the query and mutation fields share.

* Every field requires a logged-in user: anonymous callers get a GraphQL error.
* A user sees "their" notifications: those addressed to them and those they created
  (``yours``); ``notification.view_notification`` sees all of them. Queries,
  ``smsStatus``, cancel and resend all go through ``visible_to``; ``myNotifications``
  follows the same two halves through the groups events are published to.
* Creating needs ``notification.add_notification``; cancelling and resending need
  ``notification.change_notification``.
"""

import dataclasses
import enum
from typing import Any, TypeAlias

import strawberry
import strawberry_django
from django.db.models import Q, QuerySet
from graphql import GraphQLError
from strawberry import auto
from strawberry.types import Info
from strawberry.utils.str_converters import to_camel_case
from strawberry_django import BaseFilterLookup, DatetimeFilterLookup
from strawberry_django.auth.utils import get_current_user
from strawberry_django.fields.filter_order import filter_field
from strawberry_django.permissions import HasPerm, IsAuthenticated

from notification import models
from notification.models import Notification
from notification.values import parse_database_id, unstorable_text_problem

# -------- enums -------------------------------------------------------------------------

NotificationStatus: TypeAlias = models.NotificationStatusChoices
strawberry.enum(
    NotificationStatus,
    name="NotificationStatus",
    description="Where a notification is in its life: pending until a worker claims it.",
)
NotificationType: TypeAlias = models.NotificationTypeChoices
strawberry.enum(NotificationType, name="NotificationType", description="The channel.")
NotificationPriority: TypeAlias = models.NotificationPriorityChoices
strawberry.enum(
    NotificationPriority,
    name="NotificationPriority",
    description="Higher priorities are sent first within a batch.",
)
DeliveryStatus: TypeAlias = models.DeliveryStatusChoices
strawberry.enum(
    DeliveryStatus,
    name="DeliveryStatus",
    description="Twilio's message status; NOT_SUBMITTED until Twilio accepted the message.",
)
SmsEncoding: TypeAlias = models.EncodingChoices
strawberry.enum(
    SmsEncoding,
    name="SmsEncoding",
    description="GSM7 fits 160 characters in one segment (153 when split), UCS2 70 (67).",
)
NotificationCategory: TypeAlias = models.NotificationCategoryChoices
strawberry.enum(
    NotificationCategory,
    name="NotificationCategory",
    description="TRANSACTIONAL (receipts, codes, alerts) is never held by quiet hours; "
    "MARKETING waits for the recipient's quiet hours (SMS_QUIET_HOURS) to end.",
)


# -------- ordering ----------------------------------------------------------------------


@strawberry_django.order_type(models.Notification, name="NotificationOrder")
class NotificationOrder:
    id: auto
    priority: auto
    status: auto
    publish_datetime: auto
    created_datetime: auto
    sent_datetime: auto
    title: auto


# -------- filters -----------------------------------------------------------------------

_SKIP = "Filter will be skipped on `null` value"


@strawberry.input(
    name="StrFilterLookup",
    description="Text lookups (no regular expressions: they could take exponential time).",
)
class TextFilterLookup(BaseFilterLookup[str]):
    i_exact: str | None = filter_field(description=f"Case-insensitive exact match. {_SKIP}")
    contains: str | None = filter_field(description=f"Case-sensitive containment test. {_SKIP}")
    i_contains: str | None = filter_field(description=f"Case-insensitive containment test. {_SKIP}")
    starts_with: str | None = filter_field(description=f"Case-sensitive starts-with. {_SKIP}")
    i_starts_with: str | None = filter_field(description=f"Case-insensitive starts-with. {_SKIP}")
    ends_with: str | None = filter_field(description=f"Case-sensitive ends-with. {_SKIP}")
    i_ends_with: str | None = filter_field(description=f"Case-insensitive ends-with. {_SKIP}")


@strawberry_django.filter_type(models.SmsNotification, name="SmsNotificationFilter")
class SmsNotificationFilter:
    delivery_status: BaseFilterLookup[DeliveryStatus] | None
    to_phone_number: TextFilterLookup | None
    error_code: BaseFilterLookup[int] | None


@strawberry.enum(description='How a notification is yours: the two halves of "yours".')
class Ownership(enum.Enum):
    ADDRESSED_TO_ME = "addressed_to_me"
    CREATED_BY_ME = "created_by_me"


@strawberry_django.filter_type(models.Notification, name="NotificationFilter")
class NotificationFilter:
    id: BaseFilterLookup[strawberry.ID] | None
    status: BaseFilterLookup[NotificationStatus] | None
    type: BaseFilterLookup[NotificationType] | None
    priority: BaseFilterLookup[NotificationPriority] | None
    category: BaseFilterLookup[NotificationCategory] | None
    user_id: BaseFilterLookup[strawberry.ID] | None
    created_by_id: BaseFilterLookup[strawberry.ID] | None
    title: TextFilterLookup | None
    publish_datetime: DatetimeFilterLookup | None
    created_datetime: DatetimeFilterLookup | None
    sms: SmsNotificationFilter | None

    @strawberry_django.filter_field(
        description="Only notifications addressed to you, or only those you created "
        "(without it: both, or everything with notification.view_notification)."
    )
    def ownership(self, info: Info, value: Ownership, prefix: str) -> Q:
        field = "user" if value is Ownership.ADDRESSED_TO_ME else "created_by"
        return Q(**{f"{prefix}{field}": get_current_user(info)})


#: Lookups whose values are row ids (the rest of the filter is checked for NUL only).
_ID_FIELDS = frozenset({"id", "user_id", "created_by_id"})


def filter_problems(value: object, path: str = "filters", ids: bool = False) -> list[str]:
    """What in a filter input would make the database fail rather than match nothing.

    Ids must be whole numbers from 1 to 2**63-1 (SQLite and PostgreSQL refuse larger
    integers; non-numbers are refused by the ORM) and text must not contain NUL
    (PostgreSQL refuses it). Each problem names its input path, e.g. ``filters.id.exact``.
    """
    if value is None or value is strawberry.UNSET:
        return []
    if isinstance(value, list | tuple):
        return [p for i, item in enumerate(value) for p in filter_problems(item, path, ids)]
    if dataclasses.is_dataclass(value):
        return [
            problem
            for field in dataclasses.fields(value)
            for problem in filter_problems(
                getattr(value, field.name),
                f"{path}.{to_camel_case(field.name)}",
                ids or field.name in _ID_FIELDS,
            )
        ]
    if ids and not isinstance(value, bool) and parse_database_id(value) is None:
        return [f"{path}: {value!r} is not a valid id (a whole number from 1 to 2**63-1)."]
    if isinstance(value, str) and (problem := unstorable_text_problem(value)):
        return [f"{path}: {problem}"]
    return []


def check_filters(filters: object) -> None:
    """Raise a GraphQL error (code ``invalid``, naming the input) for a bad filter."""
    problems = filter_problems(filters)
    if problems:
        raise GraphQLError(
            " ".join(problems),
            extensions={"code": "invalid", "field": problems[0].split(":", 1)[0]},
        )


# -------- permissions -------------------------------------------------------------------

VIEW_ALL_PERMISSION = "notification.view_notification"
ADD_PERMISSION = "notification.add_notification"
CHANGE_PERMISSION = "notification.change_notification"

LOGIN_REQUIRED_MESSAGE = "Log in to use this API."


def login_required() -> IsAuthenticated:
    """Refuse anonymous callers with an error (not silently empty data)."""
    return IsAuthenticated(message=LOGIN_REQUIRED_MESSAGE, fail_silently=False)


def permission_required(perm: str) -> HasPerm:
    """Refuse callers without ``perm`` with an error naming what is missing."""
    return HasPerm(
        perm,
        message=f"You need the {perm!r} permission to do this.",
        fail_silently=False,
    )


def yours(user: Any) -> Q:
    """Notifications that are the user's own: addressed to them, or created by them.

    Without the creator half, someone allowed to create notifications for others
    could not read or watch what they had just created.
    """
    return Q(user=user) | Q(created_by=user)


def visible_to(queryset: QuerySet[Notification], user: Any) -> QuerySet[Notification]:
    """Restrict ``queryset`` to what ``user`` may read: the one visibility rule.

    Queries, mutations and subscriptions all filter through it, so a
    notification one of them hides can never be read or watched through another.
    """
    if user is None or not user.is_authenticated:
        return queryset.none()
    if user.has_perm(VIEW_ALL_PERMISSION):
        return queryset
    return queryset.filter(yours(user))


def visible_notifications(queryset: QuerySet[Notification], info: Info) -> QuerySet[Notification]:
    """Restrict ``queryset`` to what the current user (HTTP or websocket) may read."""
    return visible_to(queryset, get_current_user(info))
