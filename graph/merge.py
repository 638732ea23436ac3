"""Merging duplicate customers and undoing it exactly.

A merge never moves identities or events: it points the merged customer (and anything that was
already merged into it) at the survivor, and fills the survivor's empty profile fields from the
merged customer. The merge record keeps what it changed, so an unmerge restores both customers
as they were, even after later merges of the survivor.

Merges and unmerges are serialised: each takes one graph-wide turn (`take_turns`: an advisory
lock on PostgreSQL, the database's write lock on SQLite), then locks every customer row it will
touch (the given customers, their survivors, the customers already merged into them) in one
order, by id, and re-reads them under the lock. What is no longer true is refused:
`ALREADY_MERGED` (the pair is one customer already, or the chosen survivor was merged
meanwhile), `CUSTOMER_NOT_ACTIVE`, `NOT_MERGED`. `graph.verify` checks the invariants this keeps.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from core.clock import utcnow
from core.db import take_turns
from graph import hooks
from graph.customers import PROFILE_FIELDS
from graph.enums import CustomerStatus
from graph.errors import GraphErrorCode, graph_error
from graph.models import Customer, MergeRecord
from privacy import audit
from privacy.audit import pseudonym
from privacy.fields import FieldCipher
from privacy.keys import KeyProvider

GRAPH_TURN = "customer-graph-merge"


async def lock_customers(
    session: AsyncSession, customer_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, Customer]:
    """Lock these customer rows in id order (`FOR UPDATE` on PostgreSQL; SQLite's write
    transaction already excludes every other writer) and reload them from the database."""
    ids = sorted(set(customer_ids))
    rows = await session.execute(
        select(Customer)
        .where(col(Customer.id).in_(ids))
        .order_by(col(Customer.id))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {customer.id: customer for customer in rows.scalars()}


async def _survivor_pointers(
    session: AsyncSession, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, uuid.UUID]:
    rows = await session.execute(
        select(col(Customer.id), col(Customer.survivor_id)).where(
            col(Customer.id).in_(list(set(ids))), col(Customer.survivor_id).is_not(None)
        )
    )
    return {row[0]: row[1] for row in rows.all() if row[1] is not None}


async def _merged_into(session: AsyncSession, roots: Iterable[uuid.UUID]) -> list[uuid.UUID]:
    rows = await session.execute(
        select(col(Customer.id)).where(col(Customer.survivor_id).in_(list(set(roots))))
    )
    return list(rows.scalars())


def _resolve_active(
    locked: dict[uuid.UUID, Customer], customer_id: uuid.UUID, *field: str
) -> Customer:
    """The locked customer by id, resolved to its survivor; it must be active."""
    customer = locked.get(customer_id)
    if customer is None:
        raise graph_error(GraphErrorCode.CUSTOMER_NOT_FOUND, "no such customer", *field)
    if customer.survivor_id is not None:
        survivor = locked.get(customer.survivor_id)
        if survivor is None:  # the pointer moved between the read and the lock: cannot be
            raise graph_error(
                GraphErrorCode.ALREADY_MERGED, "the customer was merged meanwhile", *field
            )
        customer = survivor
    if customer.status != CustomerStatus.ACTIVE:
        raise graph_error(GraphErrorCode.CUSTOMER_NOT_ACTIVE, "the customer is not active", *field)
    return customer


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
    await take_turns(session, GRAPH_TURN)
    # Who this merge touches, read inside the graph's turn (no other merge moves a pointer
    # now), then locked in one order and re-read under the lock.
    given = [*customer_ids, *([survivor_id] if survivor_id else [])]
    pointers = await _survivor_pointers(session, given)
    roots = {pointers.get(c) or c for c in given}
    touched = set(given) | roots | set(await _merged_into(session, roots))
    locked = await lock_customers(session, touched)
    first = _resolve_active(locked, customer_ids[0], "customerIds", "0")
    second = _resolve_active(locked, customer_ids[1], "customerIds", "1")
    if first.id == second.id:
        if customer_ids[0] != customer_ids[1]:
            raise graph_error(
                GraphErrorCode.ALREADY_MERGED, "these customers are merged already", "customerIds"
            )
        raise graph_error(
            GraphErrorCode.SAME_CUSTOMER, "these ids are one customer already", "customerIds"
        )
    if survivor_id is None:
        survivor, merged = choose_survivor(first, second)
    else:
        chosen = locked.get(survivor_id)
        if chosen is not None and chosen.status == CustomerStatus.MERGED:
            raise graph_error(
                GraphErrorCode.ALREADY_MERGED,
                "the chosen survivor has been merged into another customer",
                "survivorId",
            )
        chosen = _resolve_active(locked, survivor_id, "survivorId")
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
    await take_turns(session, GRAPH_TURN)
    record = (
        await session.execute(
            select(MergeRecord)
            .where(col(MergeRecord.merged_id) == customer_id, col(MergeRecord.undone_at).is_(None))
            .order_by(col(MergeRecord.created_at).desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    pointers = await _survivor_pointers(session, [customer_id])
    touched = {customer_id, *pointers.values()}
    if record is not None:
        touched |= {record.survivor_id, *map(uuid.UUID, record.details.get("absorbed", []))}
    locked = await lock_customers(session, touched)
    merged = locked.get(customer_id)
    if merged is None:
        raise graph_error(GraphErrorCode.CUSTOMER_NOT_FOUND, "no such customer", "customerId")
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
