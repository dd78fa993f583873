"""Field extensions that apply the per-user limits (``notification.throttle``) to fields.

``user_rate_limit()`` goes on the SMS-sending mutations and ``smsSegments``;
``segment_quota()`` on the create mutations; ``login_lockout()`` on a login mutation.
A refused request is a GraphQL error (never a 500, never a partial write) whose
``extensions`` carry a stable ``code`` and ``retryAfter`` in seconds, e.g.
``{"code": "rate_limited", "retryAfter": 42}``.

They run after the permission extensions listed before them, so anonymous or
unauthorised callers get the permission error and spend no one's budget.
"""

from typing import Any

from graphql import GraphQLError
from strawberry.extensions import FieldExtension
from strawberry.types import Info
from strawberry_django.auth.utils import get_current_user
from strawberry_django.resolvers import django_resolver
from strawberry_django.utils.requests import get_request

from notification.create.idempotency import expiry_cutoff
from notification.models import IdempotencyKey
from notification.throttle.limits import LimitExceeded, check_rate, with_segment_quota
from notification.throttle.login import LoginLockedOut, check_login_allowed
from notification.values import MAX_BODY_CHARACTERS, count_segments, unstorable_text_problem


def limit_error(message: str, *, code: str, retry_after: int) -> GraphQLError:
    """The one shape of a refused request (README "Security")."""
    return GraphQLError(message, extensions={"code": code, "retryAfter": retry_after})


def _user_id(info: Info) -> int | None:
    user = get_current_user(info)
    return user.pk if user is not None and user.is_authenticated else None


class UserRateLimit(FieldExtension):
    """``GRAPHQL_USER_RATE`` requests per minute per user on this field."""

    @django_resolver(qs_hook=None)
    def resolve(self, next_: Any, source: Any, info: Info, **kwargs: Any) -> Any:
        user_id = _user_id(info)
        if user_id is not None:
            try:
                check_rate(user_id, info.field_name)
            except LimitExceeded as exc:
                raise limit_error(str(exc), code=exc.code, retry_after=exc.retry_after) from None
        return next_(source, info, **kwargs)


def user_rate_limit() -> UserRateLimit:
    return UserRateLimit()


def _body_segments(item: Any, known_keys: set[str]) -> int:
    if getattr(item, "idempotency_key", None) in known_keys:
        return 0  # a replay (or a conflict): it queues nothing, so a full quota allows it
    body = getattr(item, "body", None)
    # Bodies too long to send are refused by validation: they queue nothing.
    if not isinstance(body, str) or len(body) > MAX_BODY_CHARACTERS:
        return 0
    return count_segments(body).segments


def _known_keys(user_id: int, items: list[Any]) -> set[str]:
    """The user's unexpired idempotency keys among ``items``: their creates are replays."""
    keys = {
        key
        for item in items
        if isinstance(key := getattr(item, "idempotency_key", None), str)
        # Only keys a query can carry: the create refuses the others as invalid.
        and key
        and unstorable_text_problem(key) is None
    }
    if not keys:
        return set()
    return set(
        IdempotencyKey.objects.filter(
            user_id=user_id, key__in=keys, created_datetime__gte=expiry_cutoff()
        ).values_list("key", flat=True)
    )


def _unused_segments(result: Any, per_item: list[int]) -> int:
    """Segments of the request that the create payload shows were not queued now."""
    if result.errors or getattr(result, "replayed", False):
        return sum(per_item)
    replayed = {w.index or 0 for w in result.warnings if w.code == "replayed"}
    return sum(per_item[index] for index in replayed if index < len(per_item))


class SegmentQuota(FieldExtension):
    """``SMS_USER_SEGMENTS_PER_HOUR``: the create mutations count what they queue."""

    @django_resolver(qs_hook=None)
    def resolve(self, next_: Any, source: Any, info: Info, **kwargs: Any) -> Any:
        user_id = _user_id(info)
        items = kwargs.get("input")
        if user_id is None or items is None:
            return next_(source, info, **kwargs)
        batch = items if isinstance(items, list) else [items]
        known = _known_keys(user_id, batch)
        per_item = [_body_segments(item, known) for item in batch]

        def create() -> tuple[Any, int]:
            result = next_(source, info, **kwargs)
            return result, _unused_segments(result, per_item)

        try:
            return with_segment_quota(user_id, sum(per_item), create)
        except LimitExceeded as exc:
            raise limit_error(str(exc), code=exc.code, retry_after=exc.retry_after) from None


def segment_quota() -> SegmentQuota:
    return SegmentQuota()


class LoginLockout(FieldExtension):
    """Answer a locked-out login with its code and wait, not "wrong password".

    The lockout itself is enforced in Django's authentication
    (``notification.throttle.login``); this only words the refusal for GraphQL.
    """

    @django_resolver(qs_hook=None)
    def resolve(self, next_: Any, source: Any, info: Info, **kwargs: Any) -> Any:
        try:
            check_login_allowed(get_request(info), kwargs.get("username"))
        except LoginLockedOut as exc:
            raise limit_error(
                str(exc.args[0]), code="login_locked", retry_after=exc.retry_after
            ) from None
        return next_(source, info, **kwargs)


def login_lockout() -> LoginLockout:
    return LoginLockout()
