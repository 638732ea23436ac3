"""Static analysis of a GraphQL request before anything executes: depth, aliases and cost.

Every limit a request must stay under is in `LIMITS` (the README's "Limits" section lists the
same numbers). The analysis is linear in the size of the document: each fragment is measured
once and its measure memoised, so a spread repeated at every level (a "fragment bomb", 2^24
copies of a field from an 900-byte document) costs one visit per fragment, not one per copy.

- depth: nesting of fields with a selection (a leaf adds nothing; introspection fields and
  what they select are not counted), as Strawberry's depth limiter measured it;
- aliases: aliased fields as the executor would meet them, fragments expanded;
- cost: each selected field costs 1; a field taking `first` multiplies what it selects by the
  page size: a literal, a variable's value, else the variable's default, else 20 on a paged
  field. The number is an upper bound of the objects the request may touch.

The operation to run is chosen here too: a document with several operations and no
`operationName` is a request error (GraphQL spec, "GetOperation"), as is an unknown name.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
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
from strawberry.extensions import ValidationCache

from api.schema.common import DEFAULT_PAGE, ApiErrorCode


@dataclass(frozen=True, slots=True)
class Limits:
    max_depth: int = 12
    max_aliases: int = 30
    max_tokens: int = 4000
    max_cost: int = 50_000
    # Parsed and validated documents kept across requests.
    cache_size: int = 256
    # Nesting of selection sets in the text beyond which analysis stops at once (far above
    # `max_depth`; the parser's token limit bounds it too).
    max_nesting: int = 200


LIMITS = Limits()

# Fields that return a page of DEFAULT_PAGE items when `first` is omitted.
PAGED = frozenset({"events", "purchases", "customers", "reviews", "ledger", "topInfluencers"})


@dataclass(frozen=True, slots=True)
class Measure:
    depth: int = 0
    aliases: int = 0
    cost: int = 0

    def __add__(self, other: Measure) -> Measure:
        return Measure(
            max(self.depth, other.depth), self.aliases + other.aliases, self.cost + other.cost
        )


ZERO = Measure()


class AnalysisError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def graphql_error(self) -> GraphQLError:
        return GraphQLError(self.message, extensions={"code": self.code})


def _spreads(selection_set: SelectionSetNode | None) -> Iterator[str]:
    stack = [selection_set] if selection_set is not None else []
    while stack:
        current = stack.pop()
        for selection in current.selections:
            if isinstance(selection, FragmentSpreadNode):
                yield selection.name.value
            elif (
                isinstance(selection, (FieldNode, InlineFragmentNode))
                and selection.selection_set is not None
            ):
                stack.append(selection.selection_set)


class _Analyser:
    def __init__(
        self,
        fragments: Mapping[str, FragmentDefinitionNode],
        operation: OperationDefinitionNode,
        variables: Mapping[str, Any],
        limits: Limits,
    ) -> None:
        self.fragments = fragments
        self.limits = limits
        self.memo: dict[str, Measure] = {}
        self.defaults: dict[str, int] = {
            definition.variable.name.value: int(definition.default_value.value)
            for definition in operation.variable_definitions or ()
            if isinstance(definition.default_value, IntValueNode)
        }
        self.variables = variables

    def measure_fragments(self, roots: Iterator[str]) -> None:
        """Measure every fragment reachable from `roots` once, dependencies first (iterative:
        a chain of hundreds of fragments does not recurse)."""
        state: dict[str, int] = {}  # 1 = on the stack, 2 = done
        for root in roots:
            if root in state or root not in self.fragments:
                continue
            stack: list[tuple[str, Iterator[str]]] = [
                (root, _spreads(self.fragments[root].selection_set))
            ]
            state[root] = 1
            while stack:
                name, pending = stack[-1]
                child = next(pending, None)
                if child is None:
                    stack.pop()
                    state[name] = 2
                    self.memo[name] = self.selection(self.fragments[name].selection_set, 0)
                elif child in self.fragments and child not in state:
                    state[child] = 1
                    stack.append((child, _spreads(self.fragments[child].selection_set)))
                # A cycle (state 1) counts as nothing here; validation refuses it.

    def page(self, field: FieldNode) -> int:
        for argument in field.arguments or ():
            if argument.name.value != "first":
                continue
            value = argument.value
            if isinstance(value, IntValueNode):
                return int(value.value)
            if isinstance(value, VariableNode):
                name = value.name.value
                given = self.variables.get(name)
                if isinstance(given, int) and not isinstance(given, bool):
                    return given
                if name not in self.variables and name in self.defaults:
                    return self.defaults[name]
                return DEFAULT_PAGE
        return DEFAULT_PAGE if field.name.value in PAGED else 1

    def selection(self, selection_set: SelectionSetNode | None, nesting: int) -> Measure:
        if selection_set is None:
            return ZERO
        if nesting > self.limits.max_nesting:
            raise AnalysisError(
                ApiErrorCode.GRAPHQL_VALIDATION_FAILED,
                f"the operation exceeds the maximum depth of {self.limits.max_depth}",
            )
        total = ZERO
        for item in selection_set.selections:
            if isinstance(item, FieldNode):
                inner = self.selection(item.selection_set, nesting + 1)
                introspection = item.name.value.startswith("__")
                depth = 0 if introspection or item.selection_set is None else 1 + inner.depth
                total += Measure(
                    depth=depth,
                    aliases=inner.aliases + (1 if item.alias else 0),
                    cost=1 + max(1, self.page(item)) * inner.cost,
                )
            elif isinstance(item, InlineFragmentNode):
                total += self.selection(item.selection_set, nesting + 1)
            elif isinstance(item, FragmentSpreadNode):
                total += self.memo.get(item.name.value, ZERO)
        return total


def choose_operation(
    document: DocumentNode, operation_name: str | None
) -> OperationDefinitionNode:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is None:
        if len(operations) != 1:
            raise AnalysisError(
                ApiErrorCode.BAD_USER_INPUT,
                "the document holds several operations: name one with `operationName`"
                if operations
                else "the document holds no operation",
            )
        return operations[0]
    for operation in operations:
        if operation.name is not None and operation.name.value == operation_name:
            return operation
    raise AnalysisError(ApiErrorCode.BAD_USER_INPUT, "no operation has the given `operationName`")


def analyse(
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
    limits: Limits = LIMITS,
) -> Measure:
    """Measure the operation that would run, or raise `AnalysisError` when it is over a limit
    or none can be chosen. Linear in the document."""
    operation = choose_operation(document, operation_name)
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    analyser = _Analyser(fragments, operation, variables or {}, limits)
    analyser.measure_fragments(_spreads(operation.selection_set))
    measure = analyser.selection(operation.selection_set, 0)
    if measure.depth > limits.max_depth:
        raise AnalysisError(
            ApiErrorCode.GRAPHQL_VALIDATION_FAILED,
            f"the operation exceeds the maximum depth of {limits.max_depth}",
        )
    if measure.aliases > limits.max_aliases:
        raise AnalysisError(
            ApiErrorCode.GRAPHQL_VALIDATION_FAILED,
            f"{measure.aliases} aliases found; allowed: {limits.max_aliases}",
        )
    if measure.cost > limits.max_cost:
        raise AnalysisError(
            "QUERY_TOO_COSTLY", f"query cost {measure.cost} exceeds the limit of {limits.max_cost}"
        )
    return measure


class QueryAnalysis(ValidationCache):
    """Refuses an operation over a limit before validation and execution (typed error, no
    `data`), then validates through the bounded validation cache. Reports the cost in
    `extensions.cost`."""

    def __init__(self, limits: Limits = LIMITS) -> None:
        super().__init__(maxsize=limits.cache_size)
        self.limits = limits
        self.cost: int | None = None

    def on_validate(self) -> Iterator[None]:
        ctx = self.execution_context
        document = ctx.graphql_document
        if document is None or ctx.pre_execution_errors:
            yield
            return
        try:
            # The name the client sent: `ctx.operation_name` falls back to the first
            # operation's, which would run the first of several operations silently.
            provided: str | None = getattr(ctx, "_provided_operation_name", None)
            self.cost = analyse(document, provided, ctx.variables, self.limits).cost
        except AnalysisError as error:
            ctx.pre_execution_errors = [error.graphql_error()]
            yield
            return
        yield from super().on_validate()

    def get_results(self) -> dict[str, Any]:
        if self.cost is None:
            return {}
        return {"cost": {"requested": self.cost, "limit": self.limits.max_cost}}
