"""GraphQL types of a loyalty account: balance, tier, expiring points, the ledger, holds."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import strawberry

from api.auth import PROFILE_READERS
from api.context import Info
from api.schema.common import (
    DEFAULT_PAGE,
    ApiErrorCode,
    api_error,
    page_size,
    require,
    to_global_id,
)
from api.schema.enums import Long
from api.schema.loaders import Sealed
from api.schema.loyalty.enums import EntryKind, ReservationStatus
from api.schema.loyalty.loaders import ExpiringKey, LedgerKey
from api.schema.node import Connection, Node, connection
from loyalty import models
from loyalty.definition import TierLevel
from loyalty.ledger import Balance
from loyalty.program import ActiveProgram
from loyalty.tiers import progress

MAX_EXPIRING_DAYS = 3650


def _maybe_id(type_name: str, raw_id: uuid.UUID | None) -> strawberry.ID | None:
    return None if raw_id is None else to_global_id(type_name, raw_id)


@strawberry.type(description="A tier of the program.")
class LoyaltyTier:
    code: str
    name: str
    threshold: Long = strawberry.field(
        description="The qualifying value (points earned or spend in minor units) it needs."
    )
    multiplier: Decimal = strawberry.field(description="Multiplies the points earned.")

    @classmethod
    def from_level(cls, level: TierLevel) -> LoyaltyTier:
        return cls(
            code=level.code,
            name=level.name,
            threshold=Long(level.threshold),
            multiplier=level.multiplier,
        )


@strawberry.type
class TierProgress:
    qualifying: Long = strawberry.field(
        description="The qualifying value over the program's window (points or minor units)."
    )
    next_tier: LoyaltyTier | None = strawberry.field(description="Null at the top tier.")
    remaining: Long = strawberry.field(description="What is still missing for the next tier.")


@strawberry.type
class ExpiringPoints:
    points: Long
    first_expiry: dt.datetime | None = strawberry.field(description="Null when nothing expires.")


@strawberry.type(description="One movement of points, as it happened.")
class LedgerEntry(Node):
    kind: EntryKind
    points: Long = strawberry.field(description="Positive for credits, negative for debits.")
    occurred_at: dt.datetime
    rule_code: str | None = strawberry.field(
        description="The earn rules, bonus or referral reward that produced the entry."
    )
    reservation_id: strawberry.ID | None
    purchase_id: strawberry.ID | None
    row: strawberry.Private[models.LedgerEntry]

    @classmethod
    def from_row(cls, row: models.LedgerEntry) -> LedgerEntry:
        return cls(
            id=to_global_id("LedgerEntry", row.id),
            kind=EntryKind(row.kind),
            points=Long(row.points),
            occurred_at=row.occurred_at,
            rule_code=row.rule_code,
            reservation_id=_maybe_id("PointsReservation", row.reservation_id),
            purchase_id=_maybe_id("Purchase", row.purchase_id),
            row=row,
        )

    @strawberry.field(description="Who made the entry (`system` or a staff subject); staff only.")
    def actor(self, info: Info) -> str | None:
        require(info.context.principal.is_staff, "only staff may see who made an entry")
        return self.row.actor

    @strawberry.field(
        description="An adjustment's reason (personal data): staff roles that may read it only."
    )
    async def reason(self, info: Info) -> str | None:
        require(info.context.principal.has(*PROFILE_READERS), "your role may not read reasons")
        return await info.context.loaders.plaintext.load(
            Sealed("loyalty_entry", "reason_ct", self.row.id, self.row.reason_ct)
        )


@strawberry.type(description="Points held at a checkout until committed, cancelled or expired.")
class PointsReservation(Node):
    points: Long
    status: ReservationStatus
    created_at: dt.datetime
    expires_at: dt.datetime
    closed_at: dt.datetime | None
    order_total_minor: Long
    purchase_id: strawberry.ID | None

    @classmethod
    def from_row(cls, row: models.Reservation) -> PointsReservation:
        return cls(
            id=to_global_id("PointsReservation", row.id),
            points=Long(row.points),
            status=ReservationStatus(row.status),
            created_at=row.created_at,
            expires_at=row.expires_at,
            closed_at=row.closed_at,
            order_total_minor=Long(row.order_total_minor),
            purchase_id=_maybe_id("Purchase", row.purchase_id),
        )


@strawberry.type(description="A customer's points: computed from the ledger as of now.")
class LoyaltyAccount:
    customer_id: strawberry.Private[uuid.UUID]
    program: strawberry.Private[ActiveProgram]

    async def _balance(self, info: Info) -> Balance:
        return await info.context.loaders.loyalty.balance.load(self.customer_id)

    async def _tier_code(self, info: Info) -> str | None:
        account = await info.context.loaders.loyalty.account.load(self.customer_id)
        return None if account is None else account.tier

    @strawberry.field(
        description="Points spendable now (negative only while a return's debt is unpaid)."
    )
    async def balance(self, info: Info) -> Long:
        return Long((await self._balance(info)).available)

    @strawberry.field(description="Points earned but waiting for the return window to pass.")
    async def pending_balance(self, info: Info) -> Long:
        return Long((await self._balance(info)).pending)

    @strawberry.field(description="Points reserved at checkouts not yet committed.")
    async def held_points(self, info: Info) -> Long:
        return Long((await self._balance(info)).held)

    @strawberry.field
    async def tier(self, info: Info) -> LoyaltyTier:
        return LoyaltyTier.from_level(self.program.rules.tier(await self._tier_code(info)))

    @strawberry.field
    async def tier_progress(self, info: Info) -> TierProgress:
        level = self.program.rules.tier(await self._tier_code(info))
        value = await info.context.loaders.loyalty.qualifying.load(self.customer_id)
        found = progress(self.program.rules, level.code, value)
        upcoming = None if found.next_tier is None else LoyaltyTier.from_level(found.next_tier)
        return TierProgress(
            qualifying=Long(found.qualifying), next_tier=upcoming, remaining=Long(found.remaining)
        )

    @strawberry.field(description="Points that expire within `days` from now (1-3650).")
    async def expiring_soon(self, info: Info, days: int = 30) -> ExpiringPoints:
        if not 1 <= days <= MAX_EXPIRING_DAYS:
            raise api_error(ApiErrorCode.BAD_USER_INPUT, f"`days` must be 1-{MAX_EXPIRING_DAYS}")
        found = await info.context.loaders.loyalty.expiring.load(
            ExpiringKey(self.customer_id, days)
        )
        if found is None:
            return ExpiringPoints(points=Long(0), first_expiry=None)
        return ExpiringPoints(points=Long(found.points), first_expiry=found.first_expiry)

    @strawberry.field(description="Ledger entries newest first, with keyset pagination.")
    async def ledger(
        self, info: Info, first: int | None = DEFAULT_PAGE, after: str | None = None
    ) -> Connection[LedgerEntry]:
        size = page_size(first)
        cursors = info.context.cursors
        key = LedgerKey(self.customer_id, size, cursors.decode("ledger", after))
        rows = await info.context.loaders.loyalty.ledger.load(key)
        page = rows[:size]
        return connection(
            [LedgerEntry.from_row(row) for row in page],
            [cursors.encode("ledger", row.occurred_at, row.id) for row in page],
            more=len(rows) > size,
        )


async def loyalty_account(info: Info, customer_id: uuid.UUID) -> LoyaltyAccount | None:
    """The account of a (surviving) customer; None while no program is loaded."""
    program = await info.context.loaders.loyalty.active_program()
    return None if program is None else LoyaltyAccount(customer_id=customer_id, program=program)
