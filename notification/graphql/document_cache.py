"""Documents already parsed and found valid, so a repeated query is not parsed and validated again.

A client sends the same few query texts over and over; parsing one and running
graphql-core's ~30 validation rules over it cost about a fifth of a single
``createSmsNotification`` (issue 21's profile). Validation depends only on the
schema, the document and the rules, so its outcome for one query text is the same
every time. What depends on the request is NOT memoised here and still runs every
time (``query_limits``): the item cap (it reads the variables), the operation-name
rule, and the comparison of the document's cost with the limits of the moment.

What makes the memo safe (each is part of the key or a condition to store):

* the token limit of the moment (``GRAPHQL_MAX_TOKENS``): a document parsed under a
  higher limit is never handed to a request under a lower one;
* whether introspection is allowed: a document cached as valid with introspection
  on may hold ``__schema``, which is refused with it off;
* the schema and the validation rules (the websocket copy shares both);
* only a document that parsed, passed every limit and validated with no error is
  stored, so an error is never served from here (errors are mutated per request:
  codes added, suggestions removed) and a refused document is checked in full
  again each time;
* at most ``MAX_ENTRIES`` documents of at most ``MAX_QUERY_CHARS`` characters each
  (memory is bounded whatever clients send); the least recently used goes first.

The cached AST is shared between requests and threads: graphql-core and strawberry
only read it during execution.
"""

import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

from graphql.language import DocumentNode

from notification.graphql.document_cost import Cost

MAX_ENTRIES = 256
MAX_QUERY_CHARS = 20_000


@dataclass(frozen=True)
class ValidDocument:
    """A parsed document that validated cleanly, with its expanded cost per operation."""

    document: DocumentNode
    costs: tuple[tuple[object, Cost], ...]


class DocumentCache:
    """A thread-safe LRU of ``ValidDocument`` by key (see the module docstring)."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._entries: OrderedDict[Hashable, ValidDocument] = OrderedDict()
        self._lock = threading.Lock()
        self._max_entries = max_entries

    def get(self, key: Hashable) -> ValidDocument | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key: Hashable, entry: ValidDocument) -> None:
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


VALID_DOCUMENTS = DocumentCache()


def cache_key(
    schema: object, query: str | None, max_tokens: int, introspection: bool, rules: tuple
) -> Hashable | None:
    """The key a query text is memoised under, or None if it must not be memoised."""
    if not query or len(query) > MAX_QUERY_CHARS:
        return None
    return (schema, query, max_tokens, introspection, rules)
