"""Who may see and do what: the rules the query and mutation fields share.

* Every field requires a logged-in user: anonymous callers get a GraphQL error.
* A user sees "their" notifications: those addressed to them and those they created
  (``yours``); ``notification.view_notification`` sees all of them. Queries,
  ``smsStatus``, cancel and resend all go through ``visible_to``; ``myNotifications``
  follows the same two halves through the groups events are published to.
* Creating needs ``notification.add_notification``; cancelling and resending need
  ``notification.change_notification``.
"""

from typing import Any

from django.db.models import Q, QuerySet
from strawberry.types import Info
from strawberry_django.auth.utils import get_current_user
from strawberry_django.permissions import HasPerm, IsAuthenticated

from notification.models import Notification

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
