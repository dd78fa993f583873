"""Queries: the caller's notifications, one notification, segment counts, the caller."""

import strawberry
import strawberry_django
from django.db.models import QuerySet
from strawberry.types import Info
from strawberry_django.auth.utils import get_current_user
from strawberry_django.ordering import apply_ordering
from strawberry_django.pagination import OffsetPaginated, OffsetPaginationInput

from notification import models
from notification.segments import count_segments
from schema.filters import NotificationFilter
from schema.ordering import NotificationOrder
from schema.permissions import login_required
from schema.types import Notification, SmsSegments, User


@strawberry.type
class Query:
    @strawberry_django.offset_paginated(
        OffsetPaginated[Notification],
        extensions=[login_required()],
        description="Notifications addressed to you (all of them with "
        "notification.view_notification). Newest first unless ordered; order is a list "
        "of one-key objects in precedence order. pagination {offset, limit}: limit at "
        "most 100.",
    )
    def notifications(
        self,
        info: Info,
        filters: NotificationFilter | None = strawberry.UNSET,
        order: list[NotificationOrder] | None = strawberry.UNSET,
        pagination: OffsetPaginationInput | None = strawberry.UNSET,
    ) -> QuerySet[models.Notification]:
        # Visibility (Notification.get_queryset), filters and pagination are applied by
        # strawberry-django from these same arguments; only the ordering is ours.
        del filters, pagination
        return apply_ordering(
            NotificationOrder, order or None, info, models.Notification.objects.all()
        )

    @strawberry_django.field(
        extensions=[login_required()],
        description="One notification, or null if it does not exist or is not yours to see.",
    )
    def notification(self, id: strawberry.ID) -> Notification | None:
        if not str(id).isdigit():
            return None
        return models.Notification.objects.filter(pk=id)  # type: ignore[return-value]

    @strawberry.field(
        extensions=[login_required()],
        description="Encoding and segment count for a message body, for a live counter.",
    )
    def sms_segments(self, body: str) -> SmsSegments:
        return SmsSegments.from_info(count_segments(body))

    @strawberry_django.field(extensions=[login_required()], description="The logged-in user.")
    def me(self, info: Info) -> User:
        return get_current_user(info)  # type: ignore[return-value]
