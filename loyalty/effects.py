"""What one purchase did to its customer's points: what it earned and until when they wait.

The till prints it ("you earned N points, available from D") from the purchase mutation's own
answer; the balance itself comes from `ledger.balances_for`, the one balance rule."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from loyalty.models import EntryKind, LedgerEntry, Lot, LotStatus

EARNING = (EntryKind.EARN, EntryKind.BONUS)


@dataclass(frozen=True, slots=True)
class PurchasePoints:
    earned: int  # points credited for the purchase (its earn rules and purchase bonuses)
    pending_until: datetime | None  # when the last of them becomes spendable; None: already


async def purchase_points(
    session: AsyncSession, purchase_id: uuid.UUID, now: datetime
) -> PurchasePoints:
    earned = await session.scalar(
        select(func.coalesce(func.sum(col(LedgerEntry.points)), 0)).where(
            col(LedgerEntry.event_id) == purchase_id, col(LedgerEntry.kind).in_(EARNING)
        )
    )
    until = await session.scalar(
        select(func.max(col(Lot.available_at))).where(
            col(Lot.event_id) == purchase_id,
            col(Lot.status) == LotStatus.PENDING,
            col(Lot.available_at) > now,
        )
    )
    return PurchasePoints(earned=int(earned or 0), pending_until=until)
