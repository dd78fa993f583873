"""Which idempotency keys a create request may carry, checked before anything is written."""

from collections.abc import Sequence

from django.core.exceptions import ValidationError

from notification.models import IdempotencyKey, max_length

#: The longest key a client may send: the column's width.
MAX_KEY_LENGTH = max_length(IdempotencyKey, "key")


def key_errors(
    keys: Sequence[str | None], caller_id: int | None
) -> list[tuple[int, ValidationError]]:
    """The problems with each item's key, as ``(index, error)``; items without a key pass.

    * 1 to ``MAX_KEY_LENGTH`` printable characters: a key is opaque and compared byte for
      byte, so nothing is trimmed; control characters are refused rather than stored.
    * A key needs a caller: keys are scoped per user, and one with no user could never
      be found again.
    * A key appears at most once per request: two items sharing one would have to be
      one notification and two at once (the later item is the one refused).
    """
    problems: list[tuple[int, ValidationError]] = []
    first_index: dict[str, int] = {}
    for index, key in enumerate(keys):
        if key is None:
            continue
        error = _key_error(key, caller_id)
        if error is None and key in first_index:
            error = ValidationError(
                "This idempotency key is already used by item %(first)d of this request; "
                "each item needs its own key.",
                code="duplicate_idempotency_key",
                params={"first": first_index[key]},
            )
        first_index.setdefault(key, index)
        if error is not None:
            problems.append((index, error))
    return problems


def _key_error(key: str, caller_id: int | None) -> ValidationError | None:
    if not key:
        return ValidationError("An idempotency key cannot be empty.", code="required")
    if len(key) > MAX_KEY_LENGTH:
        return ValidationError(
            "The idempotency key has %(length)d characters; at most %(limit)d are allowed.",
            code="max_length",
            params={"length": len(key), "limit": MAX_KEY_LENGTH},
        )
    if not key.isprintable():
        return ValidationError(
            "An idempotency key may contain only printable characters (no control "
            "characters or line breaks).",
            code="invalid",
        )
    if caller_id is None:
        return ValidationError(
            "An idempotency key needs a logged-in caller: keys are remembered per user.",
            code="requires_user",
        )
    return None
