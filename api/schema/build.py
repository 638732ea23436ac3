"""The Strawberry schema, assembled from the domain folders, with its protective limits."""

from __future__ import annotations

import logging
from collections.abc import Callable

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    DisableIntrospection,
    MaskErrors,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from api.schema.analysis import LIMITS, QueryAnalysis
from api.schema.common import tag_error
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
from api.schema.identity.mutations import IdentityMutation
from api.schema.identity.queries import IdentityQuery
from api.schema.influence.mutations import InfluenceMutation
from api.schema.inputs import InputBoundary
from api.schema.loyalty.mutations import LoyaltyMutation
from api.schema.loyalty.queries import LoyaltyQuery
from api.schema.privacy.consent import ConsentMutation, ConsentQuery
from api.schema.privacy.exports import ExportMutation, ExportQuery
from api.schema.privacy.requests import RequestMutation, RequestQuery
from api.schema.scoring.mutations import ScoringMutation
from api.schema.scoring.queries import ScoringQuery

CACHE_SIZE = LIMITS.cache_size


@strawberry.type
class Query(
    CustomerQuery,
    LoyaltyQuery,
    ConsentQuery,
    RequestQuery,
    ExportQuery,
    ScoringQuery,
    IdentityQuery,
):
    pass


@strawberry.type
class Mutation(
    CustomerMutation,
    EventMutation,
    InfluenceMutation,
    LoyaltyMutation,
    ConsentMutation,
    RequestMutation,
    ExportMutation,
    ScoringMutation,
    IdentityMutation,
):
    pass


log = logging.getLogger("loyalgraph.graphql")


class Schema(strawberry.Schema):
    """Logs errors without their messages: graphql-core echoes invalid input values (a phone
    typed into the wrong field) in messages, and logs must never hold personal data."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        for error in errors:
            original = error.original_error
            code = tag_error(error)
            path = ".".join(str(part) for part in error.path or [])
            if original is not None and not isinstance(original, GraphQLError):
                log.error(
                    "unexpected %s at %s",
                    type(original).__name__,
                    path,
                    exc_info=(type(original), original, original.__traceback__),
                )
            else:
                log.info("request error %s at %s", code, path or "-")


def _should_mask(error: GraphQLError) -> bool:
    """Typed errors and request errors (parse, validation) are shown; an exception a resolver
    did not expect (anything but a GraphQLError) is masked in production."""
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError)


def build_schema(*, production: bool) -> Schema:
    # Depth, aliases and cost are measured by QueryAnalysis (linear in the document, before
    # validation and execution), which then validates through the bounded cache.
    extensions: list[type[SchemaExtension] | Callable[[], SchemaExtension]] = [
        lambda: ParserCache(maxsize=CACHE_SIZE),
        lambda: MaxTokensLimiter(max_token_count=LIMITS.max_tokens),
        QueryAnalysis,
        InputBoundary,
    ]
    if production:
        extensions += [DisableIntrospection, lambda: MaskErrors(should_mask_error=_should_mask)]
    return Schema(
        query=Query,
        mutation=Mutation,
        types=[Purchase, ReturnEvent, Visit, ContactInteraction, CampaignResponse],
        extensions=extensions,
        config=StrawberryConfig(disable_field_suggestions=production, scalar_map=SCALARS),
    )
