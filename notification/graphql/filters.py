"""Filters for ``notifications(filters: ...)`` (strawberry-django lookups, AND/OR/NOT).

Text lookups offer no regular expressions: a pattern such as ``((.*)*)*x`` makes a
backtracking engine take exponential time (on SQLite, Python's ``re`` under the
GIL froze the whole process for seconds on a 13-character title), and no pattern
check tells every catastrophic pattern apart. ``contains``, ``startsWith`` and
``endsWith`` (SQL ``LIKE``) run in linear time.
"""

import dataclasses
import enum

import strawberry
import strawberry_django
from django.db.models import Q
from graphql import GraphQLError
from strawberry.types import Info
from strawberry.utils.str_converters import to_camel_case
from strawberry_django import BaseFilterLookup, DatetimeFilterLookup
from strawberry_django.auth.utils import get_current_user
from strawberry_django.fields.filter_order import filter_field

from notification import models
from notification.graphql.enums import (
    DeliveryStatus,
    NotificationCategory,
    NotificationPriority,
    NotificationStatus,
    NotificationType,
)
from notification.ids import parse_database_id
from notification.text import unstorable_text_problem

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
