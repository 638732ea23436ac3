"""The loyalty engine's personal data, registered with privacy (`install()`).

Accounts, ledger entries, lots, holds and tier changes are the books: destruction keeps every
row (so balances, totals and `ledger verify` still hold) and clears the one personal column,
an operator's adjustment reason (ciphertext under the subject's key).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from graph.models import Event
from loyalty.models import Account, LedgerEntry, Lot, Reservation, TierChange
from privacy import sources
from privacy.fields import FieldCipher
from privacy.sources import ErasedItem, FieldChange, Section

SOURCE = "loyalty engine (loyalgraph)"
PURPOSES = ("loyalty program participation", "points accounting")
BASIS = (
    "performance of the loyalty program terms the subject accepted (152-FZ art. 6 part 1 "
    "item 5) and accounting obligations (402-FZ)"
)
RECIPIENTS = ("the operator's stores, web shop, mobile app and contact centre",)
RETENTION = (
    "5 years after the reporting year (402-FZ art. 29); on destruction the entries stay, "
    "pointing to an anonymous account, without adjustment reasons"
)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _section(name: str, title: str, records: list[dict[str, Any]]) -> Section:
    return Section(
        name=name,
        title=title,
        source_system=SOURCE,
        purposes=PURPOSES,
        legal_basis=BASIS,
        recipients=RECIPIENTS,
        retention=RETENTION,
        records=records,
    )


async def _rows(session: AsyncSession, model: Any, ids: list[uuid.UUID], *order: Any) -> list[Any]:
    result = await session.execute(
        select(model).where(col(model.customer_id).in_(ids)).order_by(*order)
    )
    return list(result.scalars().all())


class LoyaltySource:
    name = "loyalty"
    editable: frozenset[str] = frozenset()

    async def export(
        self, session: AsyncSession, cipher: FieldCipher, subject_ids: Sequence[uuid.UUID]
    ) -> list[Section]:
        ids = list(subject_ids)
        accounts = await _rows(session, Account, ids, col(Account.created_at))
        entries = await _rows(
            session, LedgerEntry, ids, col(LedgerEntry.occurred_at), col(LedgerEntry.id)
        )
        lots = await _rows(session, Lot, ids, col(Lot.earned_at), col(Lot.id))
        holds = await _rows(session, Reservation, ids, col(Reservation.created_at))
        tiers = await _rows(session, TierChange, ids, col(TierChange.occurred_at))
        await cipher.preload(entry.reason_ct for entry in entries)
        own = await _own_events(session, ids, entries)
        entry_records = [
            {
                "id": str(entry.id),
                "accountId": str(entry.customer_id),
                "kind": entry.kind,
                "points": entry.points,
                "occurredAt": _iso(entry.occurred_at),
                "ruleCode": entry.rule_code,
                # A referral reward points to the referee's purchase: theirs, not named here.
                "eventId": str(entry.event_id) if entry.event_id in own else None,
                "purchaseId": str(entry.purchase_id) if entry.purchase_id in own else None,
                "orderTotalMinor": entry.order_total_minor,
                "outstanding": entry.outstanding,
                "reason": await cipher.decrypt(
                    table="loyalty_entry", column="reason_ct", row_id=entry.id, blob=entry.reason_ct
                ),
            }
            for entry in entries
        ]
        return [
            _section(
                "loyalty_accounts",
                "Loyalty account",
                [
                    {
                        "accountId": str(row.customer_id),
                        "tier": row.tier,
                        "tierSince": _iso(row.tier_since),
                        "graceUntil": _iso(row.grace_until),
                        "openedAt": _iso(row.created_at),
                    }
                    for row in accounts
                ],
            ),
            _section("ledger_entries", "Points ledger", entry_records),
            _section(
                "lots",
                "Points lots (what was credited, what remains, when it expires)",
                [
                    {
                        "id": str(row.id),
                        "kind": row.kind,
                        "amount": row.amount,
                        "remaining": row.remaining,
                        "status": row.status,
                        "earnedAt": _iso(row.earned_at),
                        "availableAt": _iso(row.available_at),
                        "expiresAt": _iso(row.expires_at),
                    }
                    for row in lots
                ],
            ),
            _section(
                "reservations",
                "Points held at checkout",
                [
                    {
                        "id": str(row.id),
                        "points": row.points,
                        "status": row.status,
                        "createdAt": _iso(row.created_at),
                        "closedAt": _iso(row.closed_at),
                        "orderTotalMinor": row.order_total_minor,
                    }
                    for row in holds
                ],
            ),
            _section(
                "tier_changes",
                "Tier changes",
                [
                    {
                        "fromTier": row.from_tier,
                        "toTier": row.to_tier,
                        "reason": row.reason,
                        "occurredAt": _iso(row.occurred_at),
                    }
                    for row in tiers
                ],
            ),
        ]

    async def rectify(
        self,
        session: AsyncSession,
        cipher: FieldCipher,
        subject_id: uuid.UUID,
        changes: Mapping[str, str | None],
        actor: str,
    ) -> list[FieldChange]:
        return []  # the books are corrected by new entries (adjustments), never rewritten

    async def erase(
        self, session: AsyncSession, cipher: FieldCipher, subject_ids: Sequence[uuid.UUID]
    ) -> list[ErasedItem]:
        ids = list(subject_ids)
        with_reason = col(LedgerEntry.customer_id).in_(ids) & col(LedgerEntry.reason_ct).is_not(
            None
        )
        cleared = await _count(session, LedgerEntry, with_reason)
        await session.execute(
            update(LedgerEntry)
            .where(with_reason)
            .values(reason_ct=None)
            .execution_options(synchronize_session=False)
        )
        entries = await _count(session, LedgerEntry, col(LedgerEntry.customer_id).in_(ids))
        return [
            ErasedItem(
                "loyalty_entry",
                rows_anonymised=cleared,
                columns_cleared=("reason_ct",),
                rows_retained=entries - cleared,
            ),
            *[
                ErasedItem(table, rows_retained=await _count(session, model, model_filter))
                for table, model, model_filter in (
                    ("loyalty_account", Account, col(Account.customer_id).in_(ids)),
                    ("loyalty_lot", Lot, col(Lot.customer_id).in_(ids)),
                    ("loyalty_reservation", Reservation, col(Reservation.customer_id).in_(ids)),
                    ("loyalty_tier_change", TierChange, col(TierChange.customer_id).in_(ids)),
                )
            ],
        ]


async def _own_events(
    session: AsyncSession, ids: list[uuid.UUID], entries: list[LedgerEntry]
) -> set[uuid.UUID | None]:
    wanted = {e for entry in entries for e in (entry.event_id, entry.purchase_id) if e is not None}
    if not wanted:
        return set()
    rows = await session.execute(
        select(col(Event.id)).where(col(Event.id).in_(wanted), col(Event.customer_id).in_(ids))
    )
    return set(rows.scalars().all())


async def _count(session: AsyncSession, model: Any, where: Any) -> int:
    return int(
        (await session.execute(select(func.count()).select_from(model).where(where))).scalar_one()
    )


_source = LoyaltySource()


def install() -> None:
    """Register the loyalty engine's personal data with privacy (idempotent)."""
    sources.register(_source)
