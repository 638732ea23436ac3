"""The breach register: incidents with personal data and the regulator's deadlines.

152-FZ art. 21 part 3.1: the operator notifies Roskomnadzor within 24 hours of detecting an
incident (what happened, the presumed harm, measures taken, a contact) and within 72 hours with
the results of its investigation. Both deadlines run from the moment of detection, in hours, not
working days.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from core.clock import as_utc, utcnow
from core.errors import DomainError
from privacy import audit
from privacy.breach_models import Breach
from privacy.keys import KeyProvider

INITIAL_NOTICE = timedelta(hours=24)
FINAL_NOTICE = timedelta(hours=72)


class BreachErrorCode(StrEnum):
    INVALID_INPUT = "INVALID_INPUT"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_NOTIFIED = "ALREADY_NOTIFIED"


class NoticeStage(StrEnum):
    INITIAL = "initial"  # within 24 hours
    FINAL = "final"  # within 72 hours


def _error(code: BreachErrorCode, message: str, field: str) -> DomainError:
    return DomainError(code, message, [field])


async def record_breach(
    session: AsyncSession,
    keys: KeyProvider,
    *,
    detected_at: datetime,
    description: str,
    data_categories: str,
    subjects_affected: int | None,
    actor: str,
    now: datetime | None = None,
) -> Breach:
    now = now or utcnow()
    detected_at = as_utc(detected_at)
    if detected_at > now:
        raise _error(
            BreachErrorCode.INVALID_INPUT, "detection cannot be in the future", "detectedAt"
        )
    description, data_categories = description.strip(), data_categories.strip()
    if not 10 <= len(description) <= 4000:
        raise _error(
            BreachErrorCode.INVALID_INPUT,
            "describe the incident in 10-4000 characters",
            "description",
        )
    if not data_categories or len(data_categories) > 400:
        raise _error(
            BreachErrorCode.INVALID_INPUT,
            "name the categories of data (up to 400 characters)",
            "dataCategories",
        )
    if subjects_affected is not None and subjects_affected < 0:
        raise _error(
            BreachErrorCode.INVALID_INPUT, "a count of subjects is not negative", "subjectsAffected"
        )
    breach = Breach(
        detected_at=detected_at,
        recorded_at=now,
        recorded_by=actor[:100],
        description=description,
        data_categories=data_categories,
        subjects_affected=subjects_affected,
        initial_due_at=detected_at + INITIAL_NOTICE,
        final_due_at=detected_at + FINAL_NOTICE,
    )
    session.add(breach)
    await session.flush()
    await audit.record(
        session,
        keys,
        action="breach.recorded",
        actor=actor,
        details={"breach": str(breach.id)},
        at=now,
    )
    return breach


async def mark_notified(
    session: AsyncSession,
    keys: KeyProvider,
    *,
    breach_id: uuid.UUID,
    stage: NoticeStage,
    actor: str,
    at: datetime | None = None,
) -> Breach:
    at = as_utc(at) if at is not None else utcnow()
    breach = (
        await session.execute(select(Breach).where(col(Breach.id) == breach_id).with_for_update())
    ).scalar_one_or_none()
    if breach is None:
        raise _error(BreachErrorCode.NOT_FOUND, "no such breach", "breachId")
    if at < breach.detected_at:
        raise _error(BreachErrorCode.INVALID_INPUT, "a notice cannot precede detection", "at")
    if stage is NoticeStage.INITIAL:
        if breach.initial_notified_at is not None:
            raise _error(
                BreachErrorCode.ALREADY_NOTIFIED, "the 24-hour notice is recorded", "stage"
            )
        breach.initial_notified_at = at
    else:
        if breach.final_notified_at is not None:
            raise _error(
                BreachErrorCode.ALREADY_NOTIFIED, "the 72-hour notice is recorded", "stage"
            )
        breach.final_notified_at = at
        breach.closed_at = at
    await session.flush()
    await audit.record(
        session,
        keys,
        action=f"breach.notified_{stage.value}",
        actor=actor,
        details={"breach": str(breach.id), "late": at > _due(breach, stage)},
        at=at,
    )
    return breach


def _due(breach: Breach, stage: NoticeStage) -> datetime:
    return breach.initial_due_at if stage is NoticeStage.INITIAL else breach.final_due_at


@dataclass(frozen=True, slots=True)
class BreachStatus:
    breach: Breach
    overdue: list[NoticeStage]
    late: list[NoticeStage]


def status_of(breach: Breach, now: datetime) -> BreachStatus:
    overdue, late = [], []
    for stage, done in (
        (NoticeStage.INITIAL, breach.initial_notified_at),
        (NoticeStage.FINAL, breach.final_notified_at),
    ):
        if done is None and now > _due(breach, stage):
            overdue.append(stage)
        if done is not None and done > _due(breach, stage):
            late.append(stage)
    return BreachStatus(breach, overdue, late)


async def list_breaches(
    session: AsyncSession, *, open_only: bool, now: datetime | None = None
) -> list[BreachStatus]:
    now = now or utcnow()
    query = select(Breach).order_by(col(Breach.detected_at).desc()).limit(500)
    if open_only:
        query = query.where(col(Breach.closed_at).is_(None))
    rows = (await session.execute(query)).scalars().all()
    return [status_of(row, now) for row in rows]
