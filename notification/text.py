"""Text that no database can store: the one check every text input goes through.

PostgreSQL refuses NUL in text (SQLite stores it); neither can store a lone UTF-16
surrogate (``\\ud800``, which JSON's ``\\ud800`` escape produces): encoding it to
UTF-8 fails with ``'utf-8' codec can't encode``, which reached clients as raw
exception text. Refused everywhere, alike, with a message a person can act on.
"""

import re

_SURROGATE = re.compile("[\ud800-\udfff]")

NUL_MESSAGE = "Text must not contain NUL (\\x00) characters."
SURROGATE_MESSAGE = "Text must not contain unpaired UTF-16 surrogates (\\ud800-\\udfff)."


def unstorable_text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored, or None when it can."""
    if "\x00" in text:
        return NUL_MESSAGE
    if _SURROGATE.search(text):
        return SURROGATE_MESSAGE
    return None
