"""The graph's vocabulary as GraphQL enums (defined once, in graph/enums.py) and scalars.

`strawberry.enum` registers the domain enum classes themselves, so resolvers annotate with
`graph.enums.*` directly and mypy sees real types.
"""

from __future__ import annotations

from typing import NewType

import strawberry
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

SCALARS: dict[object, ScalarDefinition] = {
    Long: strawberry.scalar(
        name="Long",
        description="A 64-bit integer (money in minor units), serialised as a JSON number.",
        serialize=int,
        parse_value=int,
    ),
}
