"""Database ids as clients send them: the one parser queries, mutations and subscriptions use.

Anything outside 1..2**63-1 can name no row; checking here turns it into "not
found" or a field error instead of a database error (SQLite and psycopg both
refuse integers beyond 64 bits). Only ASCII digits count: ``str.isdigit``
accepts "²" and other Unicode digits that ``int`` then refuses.
"""

import re

MAX_DATABASE_ID = 2**63 - 1
_ID_PATTERN = re.compile(r"[0-9]{1,19}")


def parse_database_id(value: object) -> int | None:
    """``value`` as a row id (1..2**63-1, given as an int or ASCII digits), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        parsed = value
    elif isinstance(value, str) and _ID_PATTERN.fullmatch(value):
        parsed = int(value)
    else:
        return None
    return parsed if 1 <= parsed <= MAX_DATABASE_ID else None
