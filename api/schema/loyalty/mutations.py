"""Points mutations: pointsRedeem, pointsReserve, pointsCommit, pointsCancel, pointsAdjust.

Each runs in one transaction (`in_transaction`); a failed check comes back as a
`LoyaltyUserError` in the payload and changes nothing.
"""

from __future__ import annotations

import strawberry

from api.context import Info
from api.schema.access import require_roles
from api.schema.common import customer_uuid
from api.schema.loyalty.errors import LoyaltyUserError, loyalty_user_error
from api.schema.loyalty.inputs import (
    ADJUSTERS,
    PointsAdjustInput,
    PointsCancelInput,
    PointsCommitInput,
    PointsRedeemInput,
    PointsReserveInput,
    acting_for,
    purchase_uuid,
    reservation_uuid,
)
from api.schema.loyalty.types import (
    LedgerEntry,
    LoyaltyAccount,
    PointsReservation,
    loyalty_account,
)
from api.schema.transaction import in_transaction
from loyalty.redemption import Held, adjust, cancel, commit, redeem, reserve

REPLAYED = "True when this request was seen before: nothing moved again."


@strawberry.type
class PointsRedeemPayload:
    entry: LedgerEntry | None = strawberry.field(default=None, description="The REDEEM entry.")
    account: LoyaltyAccount | None = strawberry.field(
        default=None, description="The account after the operation."
    )
    replayed: bool = strawberry.field(default=False, description=REPLAYED)
    errors: list[LoyaltyUserError] = strawberry.field(default_factory=list)


@strawberry.type
class PointsReservationPayload:
    reservation: PointsReservation | None = None
    account: LoyaltyAccount | None = strawberry.field(
        default=None, description="The account after the operation."
    )
    replayed: bool = strawberry.field(default=False, description=REPLAYED)
    errors: list[LoyaltyUserError] = strawberry.field(default_factory=list)


@strawberry.type
class PointsAdjustPayload:
    entry: LedgerEntry | None = strawberry.field(default=None, description="The ADJUST entry.")
    account: LoyaltyAccount | None = strawberry.field(
        default=None, description="The account after the operation."
    )
    replayed: bool = False
    errors: list[LoyaltyUserError] = strawberry.field(default_factory=list)


async def _held(
    info: Info, result: Held | None, errors: list[LoyaltyUserError]
) -> PointsReservationPayload:
    if result is None:
        return PointsReservationPayload(errors=errors)
    return PointsReservationPayload(
        reservation=PointsReservation.from_row(result.reservation),
        account=await loyalty_account(info, result.reservation.customer_id),
        replayed=result.replayed,
    )


@strawberry.type
class LoyaltyMutation:
    @strawberry.mutation(description="Pay with points at once (idempotent).")
    async def points_redeem(self, info: Info, input: PointsRedeemInput) -> PointsRedeemPayload:
        customer_id = await acting_for(info, input.customer_id)
        cipher, purchase_id = info.context.cipher, purchase_uuid(input.purchase_id)
        result, errors = await in_transaction(
            info,
            lambda session: redeem(
                session,
                cipher,
                customer_id=customer_id,
                points=int(input.points),
                idempotency_key=input.idempotency_key,
                order_total_minor=input.total(),
                purchase_id=purchase_id,
                currency=input.currency,
            ),
            as_error=loyalty_user_error,
        )
        if result is None:
            return PointsRedeemPayload(errors=errors)
        account = await loyalty_account(info, result.entry.customer_id)
        entry = LedgerEntry.from_row(result.entry)
        return PointsRedeemPayload(entry=entry, account=account, replayed=result.replayed)

    @strawberry.mutation(description="Hold points at a checkout until commit or cancel.")
    async def points_reserve(
        self, info: Info, input: PointsReserveInput
    ) -> PointsReservationPayload:
        customer_id = await acting_for(info, input.customer_id)
        cipher = info.context.cipher
        result, errors = await in_transaction(
            info,
            lambda session: reserve(
                session,
                cipher,
                customer_id=customer_id,
                points=int(input.points),
                idempotency_key=input.idempotency_key,
                order_total_minor=int(input.order_total_minor),
                currency=input.currency,
            ),
            as_error=loyalty_user_error,
        )
        return await _held(info, result, errors)

    @strawberry.mutation(description="Turn a hold into a payment (committing twice is a replay).")
    async def points_commit(self, info: Info, input: PointsCommitInput) -> PointsReservationPayload:
        customer_id = await acting_for(info, input.customer_id)
        reservation_id = reservation_uuid(input.reservation_id)
        purchase_id = purchase_uuid(input.purchase_id)
        result, errors = await in_transaction(
            info,
            lambda session: commit(
                session,
                customer_id=customer_id,
                reservation_id=reservation_id,
                purchase_id=purchase_id,
            ),
            as_error=loyalty_user_error,
        )
        return await _held(info, result, errors)

    @strawberry.mutation(description="Release a hold (cancelling twice is a replay).")
    async def points_cancel(self, info: Info, input: PointsCancelInput) -> PointsReservationPayload:
        customer_id = await acting_for(info, input.customer_id)
        reservation_id = reservation_uuid(input.reservation_id)
        result, errors = await in_transaction(
            info,
            lambda session: cancel(session, customer_id=customer_id, reservation_id=reservation_id),
            as_error=loyalty_user_error,
        )
        return await _held(info, result, errors)

    @strawberry.mutation(description="An operator's correction, with a reason (staff only).")
    async def points_adjust(self, info: Info, input: PointsAdjustInput) -> PointsAdjustPayload:
        require_roles(info, *ADJUSTERS)
        customer_id = customer_uuid(input.customer_id)
        ctx = info.context
        result, errors = await in_transaction(
            info,
            lambda session: adjust(
                session,
                ctx.cipher,
                customer_id=customer_id,
                points=int(input.points),
                reason=input.reason,
                actor=ctx.principal.actor,
                idempotency_key=input.idempotency_key,
            ),
            as_error=loyalty_user_error,
        )
        if result is None:
            return PointsAdjustPayload(errors=errors)
        account = await loyalty_account(info, result.entry.customer_id)
        return PointsAdjustPayload(
            entry=LedgerEntry.from_row(result.entry), account=account, replayed=result.replayed
        )
