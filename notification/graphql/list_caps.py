"""How long a request's lists may be, read from the raw document and variables.

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
"""

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from graphql.language import DocumentNode, ListValueNode, Visitor, visit


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


def list_over_cap(document: DocumentNode, variables: Any, cap: int) -> ListOverCap | None:
    """The first list of this request over ``cap`` items, or all of them over ``2 * cap``."""
    literals = _ListLiterals()
    visit(document, literals)
    found: Iterator[tuple[str, int]] = (("document", n) for n in literals.lengths)
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
