"""The graph's vocabulary as GraphQL enums (defined once, in graph/enums.py) and scalars.

`strawberry.enum` registers the domain enum classes themselves, so resolvers annotate with
`graph.enums.*` directly and mypy sees real types.
"""

from __future__ import annotations

from typing import NewType

import strawberry
from graphql import IntValueNode, ValueNode
from strawberry.types.scalar import ScalarDefinition

from graph import enums

for _enum in (
    enums.Channel,
    enums.CustomerStatus,
    enums.IdentityKind,
    enums.EventType,
    enums.CampaignAction,
    enums.ReferralStatus,
    enums.SocialPlatform,
):
    strawberry.enum(_enum)

Long = NewType("Long", int)
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1


def parse_long(value: object) -> int:
    """Whole numbers in the signed 64-bit range only: 99.99 kopecks is an error, not 99."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"Long cannot represent a non-integer value: {value!r}")
    if not LONG_MIN <= value <= LONG_MAX:
        raise ValueError("Long is outside the 64-bit range")
    return value


def parse_long_literal(node: ValueNode, _variables: dict[str, object] | None = None) -> int:
    if not isinstance(node, IntValueNode):
        raise ValueError("Long cannot represent a non-integer value")
    return parse_long(int(node.value))


SCALARS: dict[object, ScalarDefinition] = {
    Long: strawberry.scalar(
        name="Long",
        description="A 64-bit integer (money in minor units), serialised as a JSON number.",
        serialize=int,
        parse_value=parse_long,
        parse_literal=parse_long_literal,
    ),
}
