"""Event mutations: purchaseRecord, returnRecord, eventRecord (all idempotent)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING, Annotated

import strawberry

from api.auth import Role
from api.context import Info
from api.schema.access import require_roles
from api.schema.common import UserError, customer_uuid, from_global_id
from api.schema.enums import Long
from api.schema.events.types import EventNode, Purchase, ReturnEvent, event_node
from api.schema.transaction import in_transaction
from core.clock import utcnow
from graph import models
from graph.enums import CampaignAction, Channel, EventType, IdentityKind
from graph.events import CustomerRef, record_event, record_purchase, record_return
from graph.lines import LineInput

if TYPE_CHECKING:
    from api.schema.customer.types import Customer
    from api.schema.loyalty.types import LoyaltyAccount

RECORDERS = (Role.APP, Role.OPERATOR, Role.ADMIN)
CustomerType = Annotated["Customer", strawberry.lazy("api.schema.customer.types")]


@strawberry.input(description="Identify a customer by one identifier instead of an id.")
class IdentifierInput:
    kind: IdentityKind
    value: str
    source_system: str | None = None


@strawberry.input(
    description="Give `unitPriceMinor`, or the line's `totalMinor` (a total that does not "
    "divide by the quantity keeps the quantity), or both when they agree."
)
class PurchaseLineInput:
    sku: str
    category: str
    quantity: int
    unit_price_minor: Long | None = None
    total_minor: Long | None = None

    def line(self) -> LineInput:
        return LineInput(
            sku=self.sku,
            category=self.category,
            quantity=self.quantity,
            unit_price_minor=None if self.unit_price_minor is None else int(self.unit_price_minor),
            total_minor=None if self.total_minor is None else int(self.total_minor),
        )


@strawberry.input
class ReturnLineInput:
    sku: str
    quantity: int


def _ref(customer_id: strawberry.ID | None, identifier: IdentifierInput | None) -> CustomerRef:
    if customer_id is not None:
        return CustomerRef(customer_id=customer_uuid(customer_id))
    if identifier is not None:
        return CustomerRef(
            kind=identifier.kind, value=identifier.value, source_system=identifier.source_system
        )
    return CustomerRef()


@strawberry.input
class PurchaseRecordInput:
    channel: Channel
    lines: list[PurchaseLineInput]
    idempotency_key: str
    customer_id: strawberry.ID | None = None
    identifier: IdentifierInput | None = None
    currency: str | None = strawberry.field(
        default=None, description="Defaults to the program currency."
    )
    occurred_at: dt.datetime | None = None
    store_code: str | None = None
    external_ref: str | None = None


@strawberry.type(description="What the purchase did to the customer's points, for the till.")
class PurchasePoints:
    earned: Long = strawberry.field(description="Points the purchase earned (0 if none).")
    pending_until: dt.datetime | None = strawberry.field(
        description="When the earned points become spendable; null if they already are."
    )
    customer_id: strawberry.Private[uuid.UUID]

    @strawberry.field(description="The account after the purchase: balance, pending, tier.")
    async def account(
        self, info: Info
    ) -> Annotated[LoyaltyAccount, strawberry.lazy("api.schema.loyalty.types")] | None:
        from api.schema.loyalty.types import loyalty_account

        return await loyalty_account(info, self.customer_id)


@strawberry.type
class PurchaseRecordPayload:
    purchase: Purchase | None = None
    customer: CustomerType | None = None
    points: PurchasePoints | None = strawberry.field(
        default=None, description="Null while no loyalty program is loaded."
    )
    replayed: bool = strawberry.field(
        default=False, description="True when the key was seen before."
    )
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class ReturnRecordInput:
    purchase_id: strawberry.ID
    lines: list[ReturnLineInput]
    channel: Channel
    idempotency_key: str
    occurred_at: dt.datetime | None = None
    store_code: str | None = None


@strawberry.type
class ReturnRecordPayload:
    return_: ReturnEvent | None = strawberry.field(name="return", default=None)
    replayed: bool = False
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class EventRecordInput:
    type: EventType
    channel: Channel
    idempotency_key: str
    customer_id: strawberry.ID | None = None
    identifier: IdentifierInput | None = None
    occurred_at: dt.datetime | None = None
    store_code: str | None = None
    topic: str | None = None
    satisfaction: int | None = None
    campaign: str | None = None
    campaign_channel: Channel | None = None
    action: CampaignAction | None = None


@strawberry.type
class EventRecordPayload:
    event: EventNode | None = None
    replayed: bool = False
    errors: list[UserError] = strawberry.field(default_factory=list)


async def _purchase_payload(
    info: Info, event: models.Event, *, replayed: bool
) -> PurchaseRecordPayload:
    from api.schema.access import visible_customer
    from api.schema.customer.types import Customer
    from loyalty.effects import purchase_points

    customer = await visible_customer(info, event.customer_id)
    points = None
    if customer is not None and await info.context.loaders.loyalty.active_program():
        found = await purchase_points(info.context.session, event.id, utcnow())
        points = PurchasePoints(
            earned=Long(found.earned), pending_until=found.pending_until, customer_id=customer.id
        )
    return PurchaseRecordPayload(
        purchase=Purchase.from_row(event),
        customer=None if customer is None else Customer.from_row(customer),
        points=points,
        replayed=replayed,
    )


def _purchase_uuid(value: str) -> uuid.UUID:
    return from_global_id(value, expected="Purchase")[1]


@strawberry.type
class EventMutation:
    @strawberry.mutation
    async def purchase_record(
        self, info: Info, input: PurchaseRecordInput
    ) -> PurchaseRecordPayload:
        require_roles(info, *RECORDERS)
        ctx = info.context
        lines = [line.line() for line in input.lines]
        recorded, errors = await in_transaction(
            info,
            lambda session: record_purchase(
                session,
                ctx.cipher,
                customer=_ref(input.customer_id, input.identifier),
                channel=input.channel,
                lines=lines,
                idempotency_key=input.idempotency_key,
                currency=input.currency or ctx.settings.currency,
                occurred_at=input.occurred_at,
                store_code=input.store_code,
                external_ref=input.external_ref,
            ),
        )
        if recorded is None:
            return PurchaseRecordPayload(errors=errors)
        return await _purchase_payload(info, recorded.event, replayed=recorded.replayed)

    @strawberry.mutation
    async def return_record(self, info: Info, input: ReturnRecordInput) -> ReturnRecordPayload:
        require_roles(info, *RECORDERS)
        purchase_id = _purchase_uuid(input.purchase_id)
        lines = [LineInput(sku=line.sku, quantity=line.quantity) for line in input.lines]
        ctx = info.context
        recorded, errors = await in_transaction(
            info,
            lambda session: record_return(
                session,
                ctx.cipher,
                purchase_id=purchase_id,
                channel=input.channel,
                lines=lines,
                idempotency_key=input.idempotency_key,
                occurred_at=input.occurred_at,
                store_code=input.store_code,
            ),
        )
        if recorded is None:
            return ReturnRecordPayload(errors=errors)
        return ReturnRecordPayload(
            return_=ReturnEvent.from_row(recorded.event), replayed=recorded.replayed
        )

    @strawberry.mutation(
        description="Record a visit, a contact-centre interaction or a campaign response."
    )
    async def event_record(self, info: Info, input: EventRecordInput) -> EventRecordPayload:
        require_roles(info, *RECORDERS)
        ctx = info.context
        recorded, errors = await in_transaction(
            info,
            lambda session: record_event(
                session,
                ctx.cipher,
                customer=_ref(input.customer_id, input.identifier),
                type=input.type,
                channel=input.channel,
                idempotency_key=input.idempotency_key,
                occurred_at=input.occurred_at,
                store_code=input.store_code,
                topic=input.topic,
                satisfaction=input.satisfaction,
                campaign=input.campaign,
                campaign_channel=input.campaign_channel,
                action=input.action,
            ),
        )
        if recorded is None:
            return EventRecordPayload(errors=errors)
        return EventRecordPayload(event=event_node(recorded.event), replayed=recorded.replayed)
