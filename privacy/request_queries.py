"""Reading data subject requests: the compliance list (overdue, due soon), histories, and the
encrypted parts (reasons, requested changes, the access package) for those allowed to see them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from core.clock import as_utc, utcnow
from privacy.calendar import WorkCalendar, work_calendar
from privacy.fields import FieldCipher
from privacy.request_models import (
    OPEN_STATUSES,
    REQUEST_TABLE,
    STEP_TABLE,
    DataSubjectRequest,
    DataSubjectRequestStep,
    RequestKind,
    RequestStatus,
)

MAX_DUE_WITHIN = 366


@dataclass(frozen=True, slots=True)
class RequestFilter:
    """What the compliance list shows. Every criterion given must hold.

    `overdue`: True, open requests past their deadline; False, every other request.
    `due_within_working_days`: open requests due by the end of the N-th Moscow working day
    after today (0: by the end of today), overdue ones included.
    """

    statuses: frozenset[RequestStatus] | None = None
    kinds: frozenset[RequestKind] | None = None
    subject_id: uuid.UUID | None = None
    overdue: bool | None = None
    due_within_working_days: int | None = None


def _is_open() -> object:
    return col(DataSubjectRequest.status).in_([status.value for status in OPEN_STATUSES])


async def list_requests(
    session: AsyncSession,
    *,
    filter: RequestFilter,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None = None,
    now: datetime | None = None,
    calendar: WorkCalendar | None = None,
) -> list[DataSubjectRequest]:
    """Requests matching `filter`, soonest deadline first (keyset on due date and id)."""
    when = as_utc(now) if now is not None else utcnow()
    query = select(DataSubjectRequest)
    if filter.statuses:
        query = query.where(
            col(DataSubjectRequest.status).in_([status.value for status in filter.statuses])
        )
    if filter.kinds:
        query = query.where(col(DataSubjectRequest.kind).in_([kind.value for kind in filter.kinds]))
    if filter.subject_id is not None:
        query = query.where(col(DataSubjectRequest.subject_id) == filter.subject_id)
    late = and_(_is_open(), col(DataSubjectRequest.due_at) < when)  # type: ignore[arg-type]
    if filter.overdue is True:
        query = query.where(late)
    elif filter.overdue is False:
        query = query.where(not_(late))
    if filter.due_within_working_days is not None:
        days = filter.due_within_working_days
        if not 0 <= days <= MAX_DUE_WITHIN:
            raise ValueError(f"due within must be 0-{MAX_DUE_WITHIN} working days")
        horizon = (calendar or work_calendar()).add_working_days(when, days)
        query = query.where(_is_open(), col(DataSubjectRequest.due_at) <= horizon)  # type: ignore[arg-type]
    if after is not None:
        due, row_id = after
        query = query.where(
            or_(
                col(DataSubjectRequest.due_at) > due,
                and_(col(DataSubjectRequest.due_at) == due, col(DataSubjectRequest.id) > row_id),
            )
        )
    query = query.order_by(col(DataSubjectRequest.due_at), col(DataSubjectRequest.id)).limit(limit)
    return list((await session.execute(query)).scalars().all())


@dataclass(frozen=True, slots=True)
class DueRequest:
    request: DataSubjectRequest
    overdue: bool
    working_days_left: int  # working days after today up to the deadline; 0 when due or late


async def due_requests(
    session: AsyncSession,
    *,
    within_working_days: int,
    now: datetime | None = None,
    calendar: WorkCalendar | None = None,
    page: int = 500,
) -> list[DueRequest]:
    """Every open request that is overdue or due within N working days, soonest first."""
    when = as_utc(now) if now is not None else utcnow()
    days = work_calendar() if calendar is None else calendar
    wanted = RequestFilter(due_within_working_days=within_working_days)
    found: list[DueRequest] = []
    after: tuple[datetime, uuid.UUID] | None = None
    while True:
        rows = await list_requests(
            session, filter=wanted, limit=page, after=after, now=when, calendar=days
        )
        for row in rows:
            due = as_utc(row.due_at)
            left = days.working_days_until(when, due) if due > when else 0
            found.append(DueRequest(request=row, overdue=due < when, working_days_left=left))
        if len(rows) < page:
            return found
        after = (rows[-1].due_at, rows[-1].id)


async def steps_of(
    session: AsyncSession, request_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[DataSubjectRequestStep]]:
    """The history of each request, oldest first, in one statement."""
    found: dict[uuid.UUID, list[DataSubjectRequestStep]] = {key: [] for key in request_ids}
    if not request_ids:
        return found
    rows = await session.execute(
        select(DataSubjectRequestStep)
        .where(col(DataSubjectRequestStep.request_id).in_(list(request_ids)))
        .order_by(col(DataSubjectRequestStep.request_id), col(DataSubjectRequestStep.seq))
    )
    for step in rows.scalars():
        found[step.request_id].append(step)
    return found


async def read_reason(cipher: FieldCipher, request: DataSubjectRequest) -> str | None:
    return await cipher.decrypt(
        table=REQUEST_TABLE, column="reason", row_id=request.id, blob=request.reason_ct
    )


async def read_step_reason(cipher: FieldCipher, step: DataSubjectRequestStep) -> str | None:
    return await cipher.decrypt(
        table=STEP_TABLE, column="reason", row_id=step.id, blob=step.reason_ct
    )


async def read_changes(
    cipher: FieldCipher, request: DataSubjectRequest
) -> dict[str, str | None] | None:
    """The requested changes of a rectification (None when none, or erased)."""
    text = await cipher.decrypt(
        table=REQUEST_TABLE, column="changes", row_id=request.id, blob=request.changes_ct
    )
    if text is None:
        return None
    loaded: dict[str, str | None] = json.loads(text)
    return loaded


async def read_access_package(
    cipher: FieldCipher, request: DataSubjectRequest
) -> tuple[str, str] | None:
    """The stored access package as (JSON text, HTML), or None (not produced, or erased)."""
    as_json = await cipher.decrypt(
        table=REQUEST_TABLE, column="package_json", row_id=request.id, blob=request.package_json_ct
    )
    as_html = await cipher.decrypt(
        table=REQUEST_TABLE, column="package_html", row_id=request.id, blob=request.package_html_ct
    )
    if as_json is None or as_html is None:
        return None
    return as_json, as_html
