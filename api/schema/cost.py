"""A static cost for each operation, reported in `extensions.cost` and capped.

Each selected field costs 1; a field taking `first` multiplies the cost of what it selects by
that page size (20 when omitted). The number is an upper bound of the objects a request may
touch, known before anything runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
)
from strawberry.extensions import SchemaExtension

from api.schema.common import DEFAULT_PAGE

MAX_COST = 50_000
# Fields that return a page of DEFAULT_PAGE items when `first` is omitted.
PAGED = frozenset({"events", "purchases", "customers", "reviews", "ledger", "topInfluencers"})


def _page(field: FieldNode, variables: dict[str, Any]) -> int:
    for argument in field.arguments or ():
        if argument.name.value != "first":
            continue
        value = argument.value
        if isinstance(value, IntValueNode):
            return int(value.value)
        if isinstance(value, VariableNode):
            found = variables.get(value.name.value)
            return int(found) if isinstance(found, int) else DEFAULT_PAGE
    return DEFAULT_PAGE if field.name.value in PAGED else 1


def selection_cost(
    selection_set: SelectionSetNode | None,
    fragments: dict[str, FragmentDefinitionNode],
    variables: dict[str, Any],
    seen: frozenset[str] = frozenset(),
) -> int:
    if selection_set is None:
        return 0
    total = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            total += 1 + max(1, _page(selection, variables)) * selection_cost(
                selection.selection_set, fragments, variables, seen
            )
        elif isinstance(selection, InlineFragmentNode):
            total += selection_cost(selection.selection_set, fragments, variables, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in fragments and name not in seen:
                total += selection_cost(
                    fragments[name].selection_set, fragments, variables, seen | {name}
                )
    return total


class QueryCost(SchemaExtension):
    def __init__(self, *, max_cost: int = MAX_COST) -> None:
        super().__init__()
        self.max_cost = max_cost
        self.cost: int | None = None

    def on_validate(self) -> Iterator[None]:
        yield
        ctx = self.execution_context
        document = ctx.graphql_document
        if document is None or ctx.pre_execution_errors:
            return
        fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        chosen = [
            op
            for op in operations
            if ctx.operation_name is None or (op.name and op.name.value == ctx.operation_name)
        ]
        self.cost = sum(
            selection_cost(op.selection_set, fragments, ctx.variables or {}) for op in chosen[:1]
        )
        if self.cost > self.max_cost:
            ctx.pre_execution_errors = [
                GraphQLError(
                    f"query cost {self.cost} exceeds the limit of {self.max_cost}",
                    extensions={"code": "QUERY_TOO_COSTLY"},
                )
            ]

    def get_results(self) -> dict[str, Any]:
        return (
            {} if self.cost is None else {"cost": {"requested": self.cost, "limit": self.max_cost}}
        )
