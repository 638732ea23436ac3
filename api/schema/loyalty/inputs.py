"""Inputs of the points operations, and the checks every one of them starts with."""

from __future__ import annotations

import uuid

import strawberry

from api.auth import Role
from api.context import Info
from api.schema.access import require_acting_for
from api.schema.common import customer_uuid, from_global_id
from api.schema.enums import Long
from api.schema.events.mutations import PurchaseLineInput
from core.clock import utcnow
from graph.enums import Channel
from graph.lines import LineInput, price_line
from loyalty.rules import Cart, Line

# Who may move or quote points for a customer other than themself.
ACTORS = (Role.APP, Role.OPERATOR, Role.ADMIN)
ADJUSTERS = (Role.OPERATOR, Role.ADMIN)


async def acting_for(info: Info, customer_id: strawberry.ID) -> uuid.UUID:
    """The customer's id; FORBIDDEN unless the caller is that customer or an actor."""
    raw = customer_uuid(customer_id)
    await require_acting_for(info, raw, *ACTORS)
    return raw


def reservation_uuid(value: strawberry.ID) -> uuid.UUID:
    return from_global_id(value, expected="PointsReservation")[1]


def purchase_uuid(value: strawberry.ID | None) -> uuid.UUID | None:
    return None if value is None else from_global_id(value, expected="Purchase")[1]


def _long(value: Long | None) -> int | None:
    return None if value is None else int(value)


@strawberry.input
class PointsRedeemInput:
    customer_id: strawberry.ID
    points: Long
    idempotency_key: str
    order_total_minor: Long | None = strawberry.field(
        default=None, description="The order's total; or give `purchaseId`."
    )
    purchase_id: strawberry.ID | None = strawberry.field(
        default=None, description="A recorded purchase the points pay for."
    )
    currency: str | None = strawberry.field(
        default=None, description="Defaults to the program currency."
    )

    def total(self) -> int | None:
        return _long(self.order_total_minor)


@strawberry.input
class PointsReserveInput:
    customer_id: strawberry.ID
    points: Long
    idempotency_key: str
    order_total_minor: Long
    currency: str | None = strawberry.field(
        default=None, description="Defaults to the program currency."
    )


@strawberry.input
class PointsCommitInput:
    customer_id: strawberry.ID
    reservation_id: strawberry.ID
    purchase_id: strawberry.ID | None = strawberry.field(
        default=None, description="The purchase the held points paid for."
    )


@strawberry.input
class PointsCancelInput:
    customer_id: strawberry.ID
    reservation_id: strawberry.ID


@strawberry.input
class PointsAdjustInput:
    customer_id: strawberry.ID
    points: Long = strawberry.field(description="Positive credits, negative debits (not below 0).")
    reason: str = strawberry.field(description="3-500 characters; stored encrypted.")
    idempotency_key: str = strawberry.field(
        description="A retry with the same key replays the first adjustment."
    )


@strawberry.input
class PointsQuoteInput:
    customer_id: strawberry.ID
    channel: Channel
    lines: list[PurchaseLineInput]
    currency: str | None = strawberry.field(
        default=None, description="Defaults to the program currency."
    )

    def cart(self, default_currency: str) -> Cart:
        return Cart(
            channel=self.channel,
            occurred_at=utcnow(),
            currency=(self.currency or default_currency).strip().upper(),
            lines=tuple(_line(line.line()) for line in self.lines),
        )


def _line(given: LineInput) -> Line:
    """An input line as the earning rules see it; `quote` validates it first."""
    priced = price_line(given)
    return Line(
        priced.sku, priced.category, priced.quantity, priced.unit_price_minor, given.total_minor
    )
