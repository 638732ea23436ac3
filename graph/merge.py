"""Merging duplicate customers and undoing it exactly.

A merge never moves identities or events: it points the merged customer (and anything that was
already merged into it) at the survivor, and fills the survivor's empty profile fields from the
merged customer. The merge record keeps what it changed, so an unmerge restores both customers
as they were, even after later merges of the survivor.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from core.clock import utcnow
from graph import hooks
from graph.customers import PROFILE_FIELDS, get_active_customer
from graph.enums import CustomerStatus
from graph.errors import GraphErrorCode, graph_error
from graph.models import Customer, MergeRecord
from privacy import audit
from privacy.audit import pseudonym
from privacy.fields import FieldCipher
from privacy.keys import KeyProvider


@dataclass(frozen=True, slots=True)
class MergeResult:
    survivor: Customer
    merged: Customer
    record: MergeRecord


def _digest(blob: bytes | None) -> str | None:
    return None if blob is None else hashlib.sha256(blob).hexdigest()


def choose_survivor(first: Customer, second: Customer) -> tuple[Customer, Customer]:
    """Survivorship when staff do not choose: the longest-standing customer survives."""
    if (second.created_at, str(second.id)) < (first.created_at, str(first.id)):
        return second, first
    return first, second


async def merge_customers(
    session: AsyncSession,
    cipher: FieldCipher,
    *,
    customer_ids: list[uuid.UUID],
    survivor_id: uuid.UUID | None,
    actor: str,
    reason: str | None = None,
    now: datetime | None = None,
) -> MergeResult:
    now = now or utcnow()
    if len(customer_ids) != 2:
        raise graph_error(
            GraphErrorCode.INVALID_INPUT, "merge exactly two customers", "customerIds"
        )
    first = await get_active_customer(session, customer_ids[0], "customerIds", "0")
    second = await get_active_customer(session, customer_ids[1], "customerIds", "1")
    if first.id == second.id:
        raise graph_error(
            GraphErrorCode.SAME_CUSTOMER, "these ids are one customer already", "customerIds"
        )
    if survivor_id is None:
        survivor, merged = choose_survivor(first, second)
    else:
        chosen = await get_active_customer(session, survivor_id, "survivorId")
        if chosen.id not in {first.id, second.id}:
            raise graph_error(
                GraphErrorCode.INVALID_INPUT, "the survivor must be one of the two", "survivorId"
            )
        survivor, merged = (first, second) if chosen.id == first.id else (second, first)

    absorbed = [
        str(row)
        for row in (
            await session.execute(
                select(col(Customer.id)).where(col(Customer.survivor_id) == merged.id)
            )
        ).scalars()
    ]
    if absorbed:
        await session.execute(
            update(Customer)
            .where(col(Customer.survivor_id) == merged.id)
            .values(survivor_id=survivor.id)
        )
    filled: dict[str, str] = {}
    for column in PROFILE_FIELDS.values():
        if getattr(survivor, column) is None and getattr(merged, column) is not None:
            value = await cipher.decrypt(
                table="customer", column=column, row_id=merged.id, blob=getattr(merged, column)
            )
            if value is None:
                continue
            blob = await cipher.encrypt(
                survivor.id, table="customer", column=column, row_id=survivor.id, value=value
            )
            setattr(survivor, column, blob)
            filled[column] = _digest(blob) or ""
    merged.survivor_id = survivor.id
    merged.status = CustomerStatus.MERGED
    merged.updated_at = survivor.updated_at = now
    record = MergeRecord(
        survivor_id=survivor.id,
        merged_id=merged.id,
        actor=actor,
        details={"absorbed": absorbed, "filled": filled},
        created_at=now,
    )
    record.reason_ct = await cipher.encrypt(
        survivor.id, table="merge_record", column="reason_ct", row_id=record.id, value=reason
    )
    session.add(record)
    await session.flush()
    await audit.record(
        session,
        cipher.keys,
        action="customer.merged",
        actor=actor,
        subject_id=survivor.id,
        details={"merge_record": str(record.id), "merged": pseudonym(cipher.keys, merged.id)},
        at=now,
    )
    await hooks.publish(session, hooks.CustomersMerged(survivor.id, merged.id, now))
    return MergeResult(survivor=survivor, merged=merged, record=record)


async def _withdraw_filled(
    session: AsyncSession, record: MergeRecord, survivor: Customer, now: datetime
) -> None:
    """Clear the profile fields this merge filled, and the copies later merges passed on.

    A field filled from A into B and then from B into C carries A's data all the way: undoing
    A's merge clears it on B and on C, wherever it is still the value the merges wrote.
    """
    columns = set(record.details.get("filled", {}))
    target, filled = survivor, record.details.get("filled", {})
    while columns:
        cleared = {c for c in columns if _digest(getattr(target, c)) == filled.get(c)}
        for column in cleared:
            setattr(target, column, None)
        if cleared:
            target.updated_at = now
        onward = (
            await session.execute(
                select(MergeRecord).where(
                    col(MergeRecord.merged_id) == target.id, col(MergeRecord.undone_at).is_(None)
                )
            )
        ).scalar_one_or_none()
        if onward is None:
            return
        next_target = await session.get(Customer, onward.survivor_id)
        assert next_target is not None
        columns, target, filled = cleared, next_target, onward.details.get("filled", {})


async def unmerge_customer(
    session: AsyncSession,
    keys: KeyProvider,
    *,
    customer_id: uuid.UUID,
    actor: str,
    now: datetime | None = None,
) -> MergeResult:
    """Undo the merge of `customer_id` into its survivor."""
    now = now or utcnow()
    merged = await session.get(Customer, customer_id)
    if merged is None:
        raise graph_error(GraphErrorCode.CUSTOMER_NOT_FOUND, "no such customer", "customerId")
    record = (
        await session.execute(
            select(MergeRecord)
            .where(col(MergeRecord.merged_id) == customer_id, col(MergeRecord.undone_at).is_(None))
            .order_by(col(MergeRecord.created_at).desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if merged.status != CustomerStatus.MERGED or record is None:
        raise graph_error(GraphErrorCode.NOT_MERGED, "this customer is not merged", "customerId")
    root = merged.survivor_id
    merged.survivor_id = None
    merged.status = CustomerStatus.ACTIVE
    merged.updated_at = now
    absorbed = [uuid.UUID(value) for value in record.details.get("absorbed", [])]
    if absorbed:
        await session.execute(
            update(Customer)
            .where(col(Customer.id).in_(absorbed), col(Customer.survivor_id) == root)
            .values(survivor_id=merged.id)
        )
    survivor = await session.get(Customer, record.survivor_id)
    assert survivor is not None
    await _withdraw_filled(session, record, survivor, now)
    record.undone_at = now
    record.undone_by = actor
    await session.flush()
    await audit.record(
        session,
        keys,
        action="customer.unmerged",
        actor=actor,
        subject_id=merged.id,
        details={"merge_record": str(record.id), "survivor": pseudonym(keys, survivor.id)},
        at=now,
    )
    await hooks.publish(session, hooks.CustomerUnmerged(survivor.id, merged.id, now))
    return MergeResult(survivor=survivor, merged=merged, record=record)
