"""Structured errors in mutation payloads: which input field, what, and a stable code.

Validation problems are data (``errors`` in the payload), so a form can show each
message next to its field. Authentication and permission problems are GraphQL errors
(top-level ``errors``): the caller cannot fix those by editing the input.
"""

import strawberry
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from strawberry.utils.str_converters import to_camel_case


@strawberry.type(description="A problem with the input, or a warning about it.")
class FieldError:
    field: str | None = strawberry.field(
        description="The GraphQL input field (camelCase, e.g. toPhoneNumber); null when the "
        "problem is with the request as a whole."
    )
    message: str = strawberry.field(description="Human-readable, for showing next to the field.")
    code: str = strawberry.field(
        description="Stable, for code: required, max_length, invalid, invalid_phone_number, "
        "does_not_exist, naive_datetime, invalid_choice, requires_content_type, too_many, "
        "not_found, not_pending, not_resendable, opted_out, duplicate_idempotency_key, "
        "idempotency_conflict, replayed."
    )
    index: int | None = strawberry.field(
        default=None,
        description="Position of the item in the input list (bulk mutations), else null.",
    )


def field_errors(error: ValidationError, *, index: int | None = None) -> list[FieldError]:
    """Turn a Django ``ValidationError`` into ``FieldError``s with GraphQL field names."""
    if hasattr(error, "error_dict"):
        return [
            FieldError(
                field=None if name == NON_FIELD_ERRORS else to_camel_case(name),
                message=_text(item),
                code=item.code or "invalid",
                index=index,
            )
            for name, items in error.error_dict.items()
            for item in items
        ]
    return [
        FieldError(field=None, message=_text(item), code=item.code or "invalid", index=index)
        for item in error.error_list
    ]


def _text(error: ValidationError) -> str:
    message = str(error.message)
    return message % error.params if error.params else message
