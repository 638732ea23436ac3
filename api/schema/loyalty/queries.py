"""Loyalty queries: the active program, and a quote for a cart (a dry run, writes nothing)."""

from __future__ import annotations

import strawberry

from api.auth import Role
from api.context import Info
from api.schema.access import require_roles
from api.schema.enums import Long
from api.schema.loyalty.inputs import PointsQuoteInput, acting_for
from api.schema.loyalty.program import LoyaltyProgram
from api.schema.transaction import as_graphql_error
from core.errors import DomainError
from loyalty.redemption import Quote, quote


@strawberry.type(description="What a cart would earn, and what points could pay for it.")
class PointsQuote:
    earn_points: Long = strawberry.field(description="After rules, tier and caps.")
    applied_rules: list[str] = strawberry.field(description="Codes of the earn rules applied.")
    max_redeem_points: Long = strawberry.field(
        description="The most points that may pay for this cart, given the balance."
    )
    point_value_minor: Long
    currency: str
    balance: Long = strawberry.field(description="Points spendable now.")

    @classmethod
    def from_quote(cls, found: Quote) -> PointsQuote:
        return cls(
            earn_points=Long(found.earn_points),
            applied_rules=list(found.rules),
            max_redeem_points=Long(found.max_redeem_points),
            point_value_minor=Long(found.point_value_minor),
            currency=found.currency,
            balance=Long(found.balance.available),
        )


@strawberry.type
class LoyaltyQuery:
    @strawberry.field(description="The active program's rules; null while none is loaded.")
    async def loyalty_program(self, info: Info) -> LoyaltyProgram | None:
        require_roles(info, *Role)
        program = await info.context.loaders.loyalty.active_program()
        return None if program is None else LoyaltyProgram.from_active(program)

    @strawberry.field(description="What a cart would earn and the most points that may pay for it.")
    async def points_quote(self, info: Info, input: PointsQuoteInput) -> PointsQuote:
        customer_id = await acting_for(info, input.customer_id)
        program = await info.context.loaders.loyalty.active_program()
        cart = input.cart(program.rules.currency if program else info.context.settings.currency)
        try:
            found = await quote(info.context.session, customer_id=customer_id, cart=cart)
        except DomainError as error:
            raise as_graphql_error(error) from None
        return PointsQuote.from_quote(found)
