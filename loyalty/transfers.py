"""Balances follow merges: one person, one balance.

A merge moves every open lot of the merged customer to the survivor, keeping each lot's dates
(pending points stay pending, expiring points expire when they would have), and releases the
merged customer's open holds first. An unmerge moves back what is left of those lots. A debt a
return left on the merged customer stays with it (noted in the issue), as does anything the
survivor spent from the moved lots while the two were one.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from loyalty.ledger import OPEN_LOTS, catch_up, credit, debit, lock_account, new_entry, release
from loyalty.models import Account, EntryKind, Lot, Reservation, ReservationStatus
from loyalty.program import ActiveProgram


async def _move(
    session: AsyncSession,
    program: ActiveProgram,
    source: Account,
    target: Account,
    lots: list[Lot],
    now: datetime,
) -> int:
    lots = [lot for lot in lots if lot.remaining > 0]
    if not lots:
        return 0
    moved = sum(lot.remaining for lot in lots)
    out = new_entry(source, program, EntryKind.TRANSFER_OUT, 0, now)
    copies = [(lot, lot.remaining) for lot in lots]
    await debit(session, out, lots, points=moved)
    for lot, points in copies:
        entry = new_entry(target, program, EntryKind.TRANSFER_IN, points, now)
        entry.rule_code = lot.rule_code
        entry.event_id = lot.event_id
        await credit(
            session,
            target,
            entry,
            earned_at=lot.earned_at,
            available_at=lot.available_at,
            expires_at=lot.expires_at,
            now=now,
            lot_kind=lot.kind,
            event_id=lot.event_id,
            origin=lot,
        )
    return moved


async def _lock_pair(
    session: AsyncSession,
    program: ActiveProgram,
    first: uuid.UUID,
    second: uuid.UUID,
    now: datetime,
) -> tuple[Account, Account]:
    """Both accounts, locked in a fixed order so that two merges cannot deadlock."""
    locked = {
        customer_id: await lock_account(session, customer_id, program.rules, now)
        for customer_id in sorted([first, second], key=str)
    }
    return locked[first], locked[second]


async def move_on_merge(
    session: AsyncSession,
    program: ActiveProgram,
    *,
    survivor_id: uuid.UUID,
    merged_id: uuid.UUID,
    now: datetime,
) -> int:
    survivor, merged = await _lock_pair(session, program, survivor_id, merged_id, now)
    held = (
        await session.execute(
            select(Reservation).where(
                col(Reservation.customer_id) == merged_id,
                col(Reservation.status) == ReservationStatus.HELD,
            )
        )
    ).scalars()
    for reservation in list(held):
        await release(
            session, merged, program, reservation, status=ReservationStatus.CANCELLED, when=now
        )
    await catch_up(session, merged, program, now)
    lots = (
        await session.execute(
            select(Lot)
            .where(col(Lot.customer_id) == merged_id, col(Lot.status).in_(OPEN_LOTS))
            .order_by(col(Lot.earned_at), col(Lot.id))
        )
    ).scalars()
    moved = await _move(session, program, merged, survivor, list(lots), now)
    await catch_up(session, survivor, program, now)
    return moved


async def move_on_unmerge(
    session: AsyncSession,
    program: ActiveProgram,
    *,
    survivor_id: uuid.UUID,
    restored_id: uuid.UUID,
    now: datetime,
) -> int:
    survivor, restored = await _lock_pair(session, program, survivor_id, restored_id, now)
    await catch_up(session, survivor, program, now)
    origin = aliased(Lot)
    lots = (
        await session.execute(
            select(Lot)
            .join(origin, col(origin.id) == col(Lot.origin_lot_id))
            .where(
                col(Lot.customer_id) == survivor_id,
                col(Lot.status).in_(OPEN_LOTS),
                col(origin.customer_id) == restored_id,
            )
            .order_by(col(Lot.earned_at), col(Lot.id))
        )
    ).scalars()
    moved = await _move(session, program, survivor, restored, list(lots), now)
    await catch_up(session, restored, program, now)
    return moved
