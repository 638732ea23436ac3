"""GraphQL types of events: an `Event` interface and one type per event kind."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated

import strawberry

from api.context import Info
from api.schema.common import to_global_id
from api.schema.customer.types import Money
from api.schema.enums import Long
from api.schema.node import Node
from graph import models
from graph.enums import CampaignAction, Channel, EventType

if TYPE_CHECKING:
    from api.schema.customer.types import Customer

CustomerRef = Annotated["Customer", strawberry.lazy("api.schema.customer.types")]


@strawberry.type
class Store:
    code: str
    name: str
    city: str


@strawberry.type
class Line:
    sku: str
    category: str
    quantity: int
    unit_price: Money = strawberry.field(
        description="Whole minor units: the floor when the line's total does not divide."
    )
    total: Money


@strawberry.interface(name="Event", description="A business event, kept as it arrived.")
class EventNode(Node):
    type: EventType
    channel: Channel
    occurred_at: dt.datetime
    recorded_at: dt.datetime
    row: strawberry.Private[models.Event]

    @strawberry.field
    async def store(self, info: Info) -> Store | None:
        if self.row.store_id is None:
            return None
        row = await info.context.loaders.store.load(self.row.store_id)
        return None if row is None else Store(code=row.code, name=row.name, city=row.city)

    @classmethod
    def _base(cls, row: models.Event) -> dict[str, object]:
        return {
            "id": to_global_id(cls.__strawberry_definition__.name, row.id),  # type: ignore[attr-defined]
            "type": EventType(row.type),
            "channel": Channel(row.channel),
            "occurred_at": row.occurred_at,
            "recorded_at": row.recorded_at,
            "row": row,
        }


async def _lines(info: Info, row: models.Event) -> list[Line]:
    currency = row.currency or info.context.settings.currency
    return [
        Line(
            sku=line.sku,
            category=line.category,
            quantity=line.quantity,
            unit_price=Money(amount_minor=Long(line.unit_price_minor), currency=currency),
            total=Money(amount_minor=Long(line.total_minor), currency=currency),
        )
        for line in await info.context.loaders.lines.load(row.id)
    ]


def _money(row: models.Event) -> Money:
    return Money(amount_minor=Long(row.amount_minor or 0), currency=row.currency or "")


@strawberry.type
class Purchase(EventNode):
    external_ref: str | None

    @classmethod
    def from_row(cls, row: models.Event) -> Purchase:
        return cls(external_ref=row.external_ref, **cls._base(row))  # type: ignore[arg-type]

    @strawberry.field
    def total(self) -> Money:
        return _money(self.row)

    @strawberry.field(description="The customer it was recorded for (the survivor after a merge).")
    async def customer(self, info: Info) -> CustomerRef | None:
        from api.schema.access import visible_customer
        from api.schema.customer.types import Customer

        row = await visible_customer(info, self.row.customer_id)
        return None if row is None else Customer.from_row(row)

    @strawberry.field
    async def lines(self, info: Info) -> list[Line]:
        return await _lines(info, self.row)


@strawberry.type(name="Return")
class ReturnEvent(EventNode):
    @classmethod
    def from_row(cls, row: models.Event) -> ReturnEvent:
        return cls(**cls._base(row))  # type: ignore[arg-type]

    @strawberry.field(description="The refunded amount, at the purchase's prices.")
    def amount(self) -> Money:
        return _money(self.row)

    @strawberry.field
    async def lines(self, info: Info) -> list[Line]:
        return await _lines(info, self.row)

    @strawberry.field
    async def purchase(self, info: Info) -> Purchase | None:
        if self.row.purchase_id is None:
            return None
        row = await info.context.loaders.event.load(self.row.purchase_id)
        return None if row is None else Purchase.from_row(row)


@strawberry.type
class Visit(EventNode):
    @classmethod
    def from_row(cls, row: models.Event) -> Visit:
        return cls(**cls._base(row))  # type: ignore[arg-type]


@strawberry.type
class ContactInteraction(EventNode):
    topic: str | None
    satisfaction: int | None

    @classmethod
    def from_row(cls, row: models.Event) -> ContactInteraction:
        return cls(topic=row.topic, satisfaction=row.satisfaction, **cls._base(row))  # type: ignore[arg-type]


@strawberry.type
class CampaignResponse(EventNode):
    campaign: str | None
    campaign_channel: Channel | None
    action: CampaignAction | None

    @classmethod
    def from_row(cls, row: models.Event) -> CampaignResponse:
        return cls(
            campaign=row.campaign,
            campaign_channel=Channel(row.campaign_channel) if row.campaign_channel else None,
            action=CampaignAction(row.action) if row.action else None,
            **cls._base(row),  # type: ignore[arg-type]
        )


_BY_TYPE: dict[
    str, type[Purchase | ReturnEvent | Visit | ContactInteraction | CampaignResponse]
] = {
    EventType.PURCHASE: Purchase,
    EventType.RETURN: ReturnEvent,
    EventType.VISIT: Visit,
    EventType.CONTACT: ContactInteraction,
    EventType.CAMPAIGN_RESPONSE: CampaignResponse,
}
EVENT_TYPE_NAMES = {"Purchase", "Return", "Visit", "ContactInteraction", "CampaignResponse"}


def event_node(row: models.Event) -> EventNode:
    return _BY_TYPE[row.type].from_row(row)
