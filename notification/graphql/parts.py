"""What a host project merges into its strawberry schema (README: "Use it in your own
Django project")::

    from strawberry.tools import merge_types
    from notification.graphql import parts

    Query = merge_types("Query", (MyQuery, *parts.QUERY_TYPES))
    Mutation = merge_types("Mutation", (MyMutation, *parts.MUTATION_TYPES))
    schema = strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=merge_types("Subscription", parts.SUBSCRIPTION_TYPES),
        extensions=parts.EXTENSIONS,
        execution_context_class=parts.EXECUTION_CONTEXT_CLASS,
    )

``EXECUTION_CONTEXT_CLASS`` executes a subscription event once for all the
subscribers of the same operation (without it each subscriber pays for its own
execution); a host that needs its own execution context can subclass it.

Queries (was ``notification.graphql.queries``):

Queries: the caller's notifications, one notification, segment counts, the caller.
"""

import strawberry
import strawberry_django
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from graphql import GraphQLError
from strawberry.types import Info
from strawberry_django.auth.utils import get_current_user
from strawberry_django.ordering import apply_ordering
from strawberry_django.pagination import OffsetPaginated, OffsetPaginationInput

from notification import models
from notification.graphql.filters import (
    NotificationFilter,
    NotificationOrder,
    check_filters,
    login_required,
)
from notification.graphql.mutations import NotificationMutation, ResendMutation
from notification.graphql.optimizer_hints import CachedHintsOptimizer
from notification.graphql.query_limits import QueryLimits
from notification.graphql.throttles import user_rate_limit
from notification.graphql.types import Notification, SmsSegments, User
from notification.graphql.ws.subscriptions import SharedEventExecutionContext, Subscription
from notification.guardrails.costs import price_estimate
from notification.values import (
    MAX_BODY_CHARACTERS,
    count_segments,
    normalize_phone_number,
    parse_database_id,
)

# -------- queries -----------------------------------------------------------------------


@strawberry.type
class Query:
    @strawberry_django.offset_paginated(
        OffsetPaginated[Notification],
        extensions=[login_required()],
        description="Your notifications: addressed to you or created by you (all of them with "
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
        # strawberry-django from these same arguments; only the ordering is ours, and
        # the check that the filters cannot make the database fail.
        check_filters(filters)
        if pagination and pagination.offset is not None and pagination.offset < 0:
            raise GraphQLError(
                "pagination.offset must be 0 or more.",
                extensions={"code": "invalid", "field": "pagination.offset"},
            )
        del filters, pagination
        return apply_ordering(
            NotificationOrder,  # type: ignore[arg-type]  # a strawberry_django order type
            order or None,  # type: ignore[arg-type]
            info,
            models.Notification.objects.all(),
        )

    @strawberry_django.field(
        extensions=[login_required()],
        description="One notification, or null if it does not exist or is not yours to see.",
    )
    def notification(self, id: strawberry.ID) -> Notification | None:
        pk = parse_database_id(id)
        if pk is None:  # no row can have it: null, like any id you cannot see
            return None
        return models.Notification.objects.filter(pk=pk)  # type: ignore[return-value]

    @strawberry.field(
        extensions=[login_required(), user_rate_limit()],
        description="Encoding and segment count for a message body, for a live counter. "
        f"Bodies over {MAX_BODY_CHARACTERS} characters (more than an SMS may carry) are "
        "refused with an error (code max_length), not counted. With toPhoneNumber, also "
        "the estimated price (segments x the price per segment to its country).",
    )
    def sms_segments(self, body: str, to_phone_number: str | None = None) -> SmsSegments:
        # Refused rather than counted: a longer body can never be sent, and an
        # unbounded input would let one request make the server count megabytes.
        if len(body) > MAX_BODY_CHARACTERS:
            raise GraphQLError(
                f"The body has {len(body)} characters; SMS allows at most "
                f"{MAX_BODY_CHARACTERS}, so it is not counted.",
                extensions={"code": "max_length", "field": "body"},
            )
        info = count_segments(body)
        price = None
        if to_phone_number:
            try:
                number = normalize_phone_number(to_phone_number)
            except ValidationError as exc:
                raise GraphQLError(
                    exc.messages[0],
                    extensions={"code": exc.error_list[0].code, "field": "toPhoneNumber"},
                ) from None
            price = price_estimate(number, info.segments)
        return SmsSegments.from_info(info, price)

    @strawberry_django.field(extensions=[login_required()], description="The logged-in user.")
    def me(self, info: Info) -> User:
        return get_current_user(info)  # type: ignore[return-value]


# -------- parts -------------------------------------------------------------------------

QUERY_TYPES: tuple[type, ...] = (Query,)
MUTATION_TYPES: tuple[type, ...] = (NotificationMutation, ResendMutation)
SUBSCRIPTION_TYPES: tuple[type, ...] = (Subscription,)
EXTENSIONS = [QueryLimits, CachedHintsOptimizer]
EXECUTION_CONTEXT_CLASS = SharedEventExecutionContext
