"""What a GraphQL document would cost if expanded: depth, aliases and fields, in one walk.

A fragment may spread another fragment twice, that one the next twice, and so on:
18 such fragments in 749 bytes expand to 2**18 selections. strawberry's
``QueryDepthLimiter`` and ``MaxAliasesLimiter`` walk every spread again (no
memoisation), so that document cost seconds of CPU before any limit refused it,
doubling with each level, anonymous and before authentication. Here each
fragment is walked once and its cost remembered, so a document costs time in
proportion to its size, whatever its expansion; the numbers are those of the
expanded document, which is what execution would pay.

Fragments that do not exist, or spread themselves (directly or not), cost
nothing here: graphql-core's validation refuses them right after these checks.

List caps (was ``notification.graphql.list_caps``):

How long a request's lists may be, read from the raw document and variables.

strawberry turns every argument into input objects before a resolver, or a
permission check, runs: an anonymous ``createSmsNotifications`` with 41,000
items (2.5 MB, under the body limit) cost 6–7 s of CPU before it was refused
for lacking permission, and an ``inList`` filter of 260,000 ids reached the
database ("too many SQL variables"). Counting the items of the raw JSON
variables and of the document's list literals costs microseconds per item and
runs before any conversion, for every caller.

Two numbers bound a request: no single list may be longer than the cap (the
bulk create's 1,000 items fit), and all its lists together may hold at most
twice the cap. Nested filters (``AND``/``OR``) may each carry an ``inList``;
the total keeps their sum, and so the SQL parameters one query binds, far
below the databases' limits (32,766 on SQLite, 65,535 on PostgreSQL).

Document cache (was ``notification.graphql.document_cache``):

Documents already parsed and found valid, so a repeated query is not parsed and validated again.

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

import itertools
import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from graphql.language import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    ListValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    Visitor,
    visit,
)

# -------- document_cost -----------------------------------------------------------------


@dataclass(frozen=True)
class Cost:
    """Of one selection set, expanded: its deepest level, its aliases, its fields.

    ``depth`` counts levels below the fields of the set itself (a set of leaf fields
    is 0), so an operation's ``depth`` is the level of its deepest field below the
    root field, the same number strawberry's depth limiter compares. Introspection
    fields (``__schema``, ``__type``, ``__typename``) add no depth: introspection has
    its own switch, and its nested ``ofType`` selections are not a cost of ours.
    """

    depth: int = 0
    aliases: int = 0
    fields: int = 0

    def plus(self, other: "Cost") -> "Cost":
        """Both sets side by side: the deeper depth, the sum of the counts."""
        return Cost(
            max(self.depth, other.depth),
            self.aliases + other.aliases,
            self.fields + other.fields,
        )


_NOTHING = Cost()


class _Walk:
    """One document's walk; each fragment's cost is computed once and reused."""

    def __init__(self, document: DocumentNode) -> None:
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.costs: dict[str, Cost] = {}
        self.in_progress: set[str] = set()

    def selection_set(self, selection_set: SelectionSetNode | None) -> Cost:
        total = _NOTHING
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                total = total.plus(self.field(selection))
            elif isinstance(selection, InlineFragmentNode):
                total = total.plus(self.selection_set(selection.selection_set))
            elif isinstance(selection, FragmentSpreadNode):
                total = total.plus(self.fragment(selection.name.value))
        return total

    def field(self, field: FieldNode) -> Cost:
        below = self.selection_set(field.selection_set)
        introspection = field.name.value.startswith("__")
        depth = 1 + below.depth if field.selection_set and not introspection else 0
        return Cost(depth, below.aliases + (1 if field.alias else 0), below.fields + 1)

    def fragment(self, name: str) -> Cost:
        cost = self.costs.get(name)
        if cost is not None:
            return cost
        definition = self.fragments.get(name)
        if definition is None or name in self.in_progress:
            return _NOTHING  # unknown or cyclic: validation refuses the document
        self.in_progress.add(name)
        cost = self.selection_set(definition.selection_set)
        self.in_progress.discard(name)
        self.costs[name] = cost
        return cost


def operation_costs(document: DocumentNode) -> Iterable[tuple[OperationDefinitionNode, Cost]]:
    """Each operation of ``document`` with its expanded cost (fragments walked once)."""
    walk = _Walk(document)
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            yield definition, walk.selection_set(definition.selection_set)


# -------- list_caps ---------------------------------------------------------------------


@dataclass(frozen=True)
class ListOverCap:
    """The first list found over the cap (``where``: a variable path or ``document``)."""

    where: str
    items: int
    total: bool = False


def _variable_lists(value: Any, path: str) -> Iterator[tuple[str, int]]:
    """Every list inside ``value`` (JSON: dicts, lists, scalars), with its path and length.

    A list is yielded before its items are looked at, so a caller that stops at the
    first list over the cap never walks it. Iterative: the JSON parser bounds nesting,
    but a deep structure must not cost a Python frame per level here.
    """
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        current, where = stack.pop()
        items = enumerate(current) if isinstance(current, list) else current.items()
        if isinstance(current, list):
            yield where, len(current)
        stack.extend(
            (item, f"{where}.{key}") for key, item in items if isinstance(item, list | dict)
        )


class _ListLiterals(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.lengths: list[int] = []

    def enter_list_value(self, node: ListValueNode, *_args: Any) -> None:
        self.lengths.append(len(node.values))


def literal_list_lengths(document: DocumentNode) -> tuple[int, ...]:
    """The length of each list literal in ``document``, in document order."""
    literals = _ListLiterals()
    visit(document, literals)
    return tuple(literals.lengths)


def list_over_cap(
    document: DocumentNode,
    variables: Any,
    cap: int,
    literal_lengths: tuple[int, ...] | None = None,
) -> ListOverCap | None:
    """The first list of this request over ``cap`` items, or all of them over ``2 * cap``.

    ``literal_lengths``: the document's ``literal_list_lengths`` when the caller has
    them (a cached document's: the same document object, the same lengths).
    """
    if literal_lengths is None:
        literal_lengths = literal_list_lengths(document)
    found: Iterator[tuple[str, int]] = (("document", n) for n in literal_lengths)
    if isinstance(variables, dict):
        found = itertools.chain(found, _variable_lists(variables, "variables"))
    total = 0
    for where, items in found:
        if items > cap:
            return ListOverCap(where, items)
        total += items
        if total > 2 * cap:
            return ListOverCap("request", total, total=True)
    return None


# -------- document_cache ----------------------------------------------------------------

MAX_ENTRIES = 256
MAX_QUERY_CHARS = 20_000


@dataclass(frozen=True)
class ValidDocument:
    """A parsed document that validated cleanly, with its expanded cost per operation."""

    document: DocumentNode
    costs: tuple[tuple[object, Cost], ...]
    #: ``literal_list_lengths(document)``, so a request does not walk it again (None:
    #: not known, walked per request).
    list_lengths: tuple[int, ...] | None = None


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
