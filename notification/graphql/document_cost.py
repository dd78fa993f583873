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
"""

from collections.abc import Iterable
from dataclasses import dataclass

from graphql.language import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)


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
