"""The Strawberry schema, assembled from the domain folders, with its protective limits."""

from __future__ import annotations

from collections.abc import Callable

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig

from api.schema.cost import QueryCost
from api.schema.customer.mutations import CustomerMutation
from api.schema.customer.queries import CustomerQuery
from api.schema.enums import SCALARS
from api.schema.events.mutations import EventMutation
from api.schema.events.types import (
    CampaignResponse,
    ContactInteraction,
    Purchase,
    ReturnEvent,
    Visit,
)
from api.schema.influence.mutations import InfluenceMutation

MAX_DEPTH = 12
MAX_ALIASES = 30
MAX_TOKENS = 4000
CACHE_SIZE = 256


@strawberry.type
class Query(CustomerQuery):
    pass


@strawberry.type
class Mutation(CustomerMutation, EventMutation, InfluenceMutation):
    pass


def _should_mask(error: GraphQLError) -> bool:
    """Typed errors (with a code) and request errors (parse, validation) are shown; an
    unexpected exception from a resolver is masked in production."""
    if error.extensions and "code" in error.extensions:
        return False
    return error.original_error is not None


def build_schema(*, production: bool) -> strawberry.Schema:
    # The depth and alias rules are built once per schema: the validation cache is keyed on
    # the rule classes, and limiters built per request would make new classes every time
    # (every request would miss the cache and be validated again).
    rules = [
        *QueryDepthLimiter(max_depth=MAX_DEPTH).validation_rules,
        *MaxAliasesLimiter(max_alias_count=MAX_ALIASES).validation_rules,
    ]
    extensions: list[type[SchemaExtension] | Callable[[], SchemaExtension]] = [
        lambda: ParserCache(maxsize=CACHE_SIZE),
        lambda: ValidationCache(maxsize=CACHE_SIZE),
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: AddValidationRules(rules),
        QueryCost,
    ]
    if production:
        extensions += [DisableIntrospection, lambda: MaskErrors(should_mask_error=_should_mask)]
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        types=[Purchase, ReturnEvent, Visit, ContactInteraction, CampaignResponse],
        extensions=extensions,
        config=StrawberryConfig(disable_field_suggestions=production, scalar_map=SCALARS),
    )
