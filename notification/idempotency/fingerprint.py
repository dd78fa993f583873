"""What "the same input" means for an idempotency key: a hash of the normalised input.

The hash is taken over the request *after* validation has normalised it (trimmed title,
E.164 number, UTC time, content type label), i.e. over what would be stored. So a retry
that spells the number ``+1 415 555 0100`` instead of ``+14155550100`` is the same
request, while any change to what would be stored (another body, another recipient, a
different time) is a different one and the key is refused for it.
"""

import dataclasses
import datetime
import enum
import hashlib
import json
from typing import TYPE_CHECKING

from django.contrib.contenttypes.models import ContentType

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

#: Bumped if the encoding ever changes, so an old fingerprint never matches by accident.
_VERSION = "v1"


def fingerprint(item: "DataclassInstance") -> str:
    """SHA-256 (hex) of a normalised request dataclass: its field names and values."""
    fields = {field.name: getattr(item, field.name) for field in dataclasses.fields(item)}
    canonical = json.dumps(
        fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_encode
    )
    return hashlib.sha256(f"{_VERSION}:{canonical}".encode()).hexdigest()


def _encode(value: object) -> object:
    """JSON for the value types a normalised request holds besides str, int and None."""
    if isinstance(value, datetime.datetime):
        # One instant, one text: the same moment in two zones hashes the same.
        return value.astimezone(datetime.UTC).isoformat()
    if isinstance(value, ContentType):
        return f"{value.app_label}.{value.model}"
    if isinstance(value, enum.Enum):
        return value.value
    raise TypeError(f"cannot fingerprint a {type(value).__name__}")
