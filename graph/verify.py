"""`loyalgraph graph verify`: the customer graph's invariants, checked in SQL.

- `merged_points_to_active`: a MERGED customer's survivor is ACTIVE (so pointers are one hop:
  no chain, no cycle, nobody resolves to a merged or erased customer);
- `erased_points_to_erased`: an ERASED customer that was merged points to an ERASED survivor
  (destruction takes a subject's merged records with it);
- `status_matches_pointer`: a customer has a survivor pointer exactly when it is MERGED (or
  was, before its subject was erased), and never points at itself;
- `one_open_merge_record`: a MERGED customer has exactly one merge record not undone, and an
  ACTIVE customer none;
- `identity_resolves_to_active`: every identifier resolves (through the survivor pointer) to
  an ACTIVE customer.

A breach names the check and a customer or identity id (pseudonymous), never personal data.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from graph.enums import CustomerStatus
from graph.models import Customer, Identity, MergeRecord

MAX_LISTED = 100
ACTIVE, MERGED, ERASED = CustomerStatus.ACTIVE, CustomerStatus.MERGED, CustomerStatus.ERASED


@dataclass(frozen=True, slots=True)
class Breach:
    check: str
    subject: uuid.UUID
    detail: str


@dataclass(slots=True)
class GraphReport:
    customers: int = 0
    merged: int = 0
    identities: int = 0
    breaches: list[Breach] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaches


async def verify_graph(session: AsyncSession) -> GraphReport:
    report = GraphReport()
    count = func.count()
    report.customers = (await session.execute(select(count).select_from(Customer))).scalar_one()
    report.merged = (
        await session.execute(select(count).where(col(Customer.status) == MERGED))
    ).scalar_one()
    report.identities = (
        await session.execute(select(count).select_from(Identity))
    ).scalar_one()

    async def collect(check: str, query: Any, describe: str) -> None:
        for row in (await session.execute(query.limit(MAX_LISTED))).all():
            report.breaches.append(Breach(check, row[0], describe.format(*row[1:])))

    customer, survivor = aliased(Customer), aliased(Customer)
    await collect(
        "merged_points_to_active",
        select(col(customer.id), col(survivor.id), col(survivor.status))
        .join(survivor, col(survivor.id) == col(customer.survivor_id))
        .where(col(customer.status) == MERGED, col(survivor.status) != ACTIVE)
        .order_by(col(customer.id)),
        "its survivor {} is {}",
    )
    await collect(
        "erased_points_to_erased",
        select(col(customer.id), col(survivor.id), col(survivor.status))
        .join(survivor, col(survivor.id) == col(customer.survivor_id))
        .where(col(customer.status) == ERASED, col(survivor.status) != ERASED)
        .order_by(col(customer.id)),
        "its survivor {} is {}",
    )
    await collect(
        "status_matches_pointer",
        select(col(Customer.id), col(Customer.status), col(Customer.survivor_id))
        .where(
            or_(
                and_(col(Customer.status) == MERGED, col(Customer.survivor_id).is_(None)),
                and_(col(Customer.status) == ACTIVE, col(Customer.survivor_id).is_not(None)),
                col(Customer.survivor_id) == col(Customer.id),
            )
        )
        .order_by(col(Customer.id)),
        "status {} with survivor pointer {}",
    )
    open_records = (
        select(col(MergeRecord.merged_id).label("merged_id"), count.label("n"))
        .where(col(MergeRecord.undone_at).is_(None))
        .group_by(col(MergeRecord.merged_id))
        .subquery()
    )
    opened = func.coalesce(open_records.c.n, 0)
    await collect(
        "one_open_merge_record",
        select(col(Customer.id), col(Customer.status), opened)
        .outerjoin(open_records, open_records.c.merged_id == col(Customer.id))
        .where(
            or_(
                and_(col(Customer.status) == MERGED, opened != 1),
                and_(col(Customer.status) == ACTIVE, opened != 0),
            )
        )
        .order_by(col(Customer.id)),
        "status {} with {} open merge records",
    )
    holder = aliased(Customer)
    resolved = aliased(Customer)
    await collect(
        "identity_resolves_to_active",
        select(col(Identity.id), col(holder.id), col(resolved.status))
        .join(holder, col(holder.id) == col(Identity.customer_id))
        .join(resolved, col(resolved.id) == func.coalesce(col(holder.survivor_id), col(holder.id)))
        .where(col(resolved.status) != ACTIVE)
        .order_by(col(Identity.id)),
        "held by customer {}, which resolves to a {} customer",
    )
    return report
