"""May this subject's data be processed for this purpose now? One answer, asked by every domain.

A subject may be processed for a purpose when

- they hold a GRANTED consent for that purpose (and, for marketing, that channel), and
- no processing restriction (blocking, 152-FZ art. 20-21) is in force for them: a restricted
  subject is excluded from every purpose; only storage continues.

`permitted` is that rule as one SQL condition over a subject-id column, so a query that selects
people (an audience, a scoring batch) filters in the database with the very same rule that
`may_process` (one subject) and `allowed_subjects` (a batch) apply. With `at`, the answer is the
one that held at that instant, read from the consent history and the restriction periods; without
it, from the current state.

A consent stays valid after a newer document version is published: a document's validity window
limits when a consent can be given under it, not how long a given consent lasts.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import ColumnElement, Uuid, and_, exists, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, aliased
from sqlmodel import col

from core.clock import as_utc, utcnow
from privacy import audit
from privacy.consent_models import Consent, ConsentChange, ProcessingRestriction
from privacy.keys import KeyProvider
from privacy.purposes import ConsentStatus, MarketingChannel, Purpose, channel_key

Subject = ColumnElement[uuid.UUID] | Mapped[uuid.UUID]
BATCH = 5_000  # subject ids per statement in `allowed_subjects` (bound-parameter limits)


def restricted(subject: Subject, *, at: datetime | None = None) -> ColumnElement[bool]:
    """SQL: a processing restriction is in force for `subject` (now, or at `at`)."""
    r = aliased(ProcessingRestriction)
    if at is None:
        return exists().where(col(r.subject_id) == subject, col(r.lifted_at).is_(None))
    moment = as_utc(at)
    return exists().where(
        col(r.subject_id) == subject,
        col(r.restricted_at) <= moment,
        or_(col(r.lifted_at).is_(None), col(r.lifted_at) > moment),
    )


def _consented(
    subject: Subject, purpose: Purpose, channel: str, at: datetime | None
) -> ColumnElement[bool]:
    if at is None:
        c = aliased(Consent)
        return exists().where(
            col(c.subject_id) == subject,
            col(c.purpose) == purpose.value,
            col(c.channel) == channel,
            col(c.status) == ConsentStatus.GRANTED.value,
        )
    moment = as_utc(at)
    change, later = aliased(ConsentChange), aliased(ConsentChange)
    superseded = exists().where(
        col(later.consent_id) == col(change.consent_id),
        col(later.occurred_at) > col(change.occurred_at),
        col(later.occurred_at) <= moment,
    )
    return exists().where(
        col(change.subject_id) == subject,
        col(change.purpose) == purpose.value,
        col(change.channel) == channel,
        col(change.status) == ConsentStatus.GRANTED.value,
        col(change.occurred_at) <= moment,
        ~superseded,
    )


def permitted(
    subject: Subject,
    *,
    purpose: Purpose,
    channel: MarketingChannel | None = None,
    at: datetime | None = None,
) -> ColumnElement[bool]:
    """SQL: `subject` may be processed for `purpose` (and marketing `channel`) now or at `at`.

    Raises ValueError for marketing without a channel or another purpose with one: asking the
    wrong question is a bug in the caller, not an answer of "no".
    """
    key = channel_key(purpose, channel)
    return and_(_consented(subject, purpose, key, at), ~restricted(subject, at=at))


def _subject(subject_id: uuid.UUID) -> ColumnElement[uuid.UUID]:
    return literal(subject_id, type_=Uuid())


async def may_process(
    session: AsyncSession,
    *,
    subject_id: uuid.UUID,
    purpose: Purpose,
    channel: MarketingChannel | None = None,
    at: datetime | None = None,
) -> bool:
    """True when the subject's data may be processed for the purpose (and channel) now, or at
    `at`: a granted consent and no restriction in force. One statement."""
    condition = permitted(_subject(subject_id), purpose=purpose, channel=channel, at=at)
    found = (await session.execute(select(literal(1)).where(condition))).first()
    return found is not None


async def allowed_subjects(
    session: AsyncSession,
    subject_ids: Iterable[uuid.UUID],
    *,
    purpose: Purpose,
    channel: MarketingChannel | None = None,
    at: datetime | None = None,
) -> set[uuid.UUID]:
    """The subjects among `subject_ids` that may be processed for the purpose: `may_process`
    for many, one statement per 5,000 ids."""
    wanted = list(dict.fromkeys(subject_ids))
    key = channel_key(purpose, channel)
    # Candidates come from the consent rows (current, or the history for a past instant).
    if at is None:
        current = aliased(Consent)
        subject, purpose_col, channel_col = current.subject_id, current.purpose, current.channel
    else:
        change = aliased(ConsentChange)
        subject, purpose_col, channel_col = change.subject_id, change.purpose, change.channel
    allowed: set[uuid.UUID] = set()
    for start in range(0, len(wanted), BATCH):
        chunk = wanted[start : start + BATCH]
        rows = await session.execute(
            select(col(subject))
            .distinct()
            .where(
                col(subject).in_(chunk),
                col(purpose_col) == purpose.value,
                col(channel_col) == key,
                permitted(col(subject), purpose=purpose, channel=channel, at=at),
            )
        )
        allowed.update(rows.scalars().all())
    return allowed


# --- processing restrictions (blocking) --------------------------------------------------


async def is_restricted(
    session: AsyncSession, *, subject_id: uuid.UUID, at: datetime | None = None
) -> bool:
    found = (
        await session.execute(select(literal(1)).where(restricted(_subject(subject_id), at=at)))
    ).first()
    return found is not None


async def active_restrictions(
    session: AsyncSession, *, subject_id: uuid.UUID
) -> list[ProcessingRestriction]:
    rows = await session.execute(
        select(ProcessingRestriction)
        .where(
            col(ProcessingRestriction.subject_id) == subject_id,
            col(ProcessingRestriction.lifted_at).is_(None),
        )
        .order_by(col(ProcessingRestriction.restricted_at))
        .with_for_update()
    )
    return list(rows.scalars().all())


async def restrict_processing(
    session: AsyncSession,
    keys: KeyProvider,
    *,
    subject_id: uuid.UUID,
    request_id: uuid.UUID | None,
    actor: str,
    at: datetime | None = None,
) -> ProcessingRestriction:
    """Block all processing of the subject's data but storage, from `at` (default now).

    Idempotent per request: a restriction already in force for the same `request_id` is
    returned as it is. Restrictions of different requests are kept apart, so lifting one
    (its request answered) leaves the others in force.
    """
    for existing in await active_restrictions(session, subject_id=subject_id):
        if existing.request_id == request_id:
            return existing
    restriction = ProcessingRestriction(
        subject_id=subject_id,
        request_id=request_id,
        restricted_at=as_utc(at) if at is not None else utcnow(),
        restricted_by=actor,
    )
    session.add(restriction)
    await session.flush()
    await audit.record(
        session,
        keys,
        action="processing.restricted",
        actor=actor,
        subject_id=subject_id,
        details={
            "restriction_id": str(restriction.id),
            "request_id": None if request_id is None else str(request_id),
        },
        at=restriction.restricted_at,
    )
    return restriction


async def lift_restriction(
    session: AsyncSession,
    keys: KeyProvider,
    *,
    subject_id: uuid.UUID,
    actor: str,
    request_id: uuid.UUID | None = None,
    at: datetime | None = None,
) -> list[ProcessingRestriction]:
    """Lift the subject's restrictions in force: those of `request_id`, or all of them when it
    is None. Returns the ones lifted (none is not an error: lifting is idempotent)."""
    moment = as_utc(at) if at is not None else utcnow()
    lifted = [
        row
        for row in await active_restrictions(session, subject_id=subject_id)
        if request_id is None or row.request_id == request_id
    ]
    for row in lifted:
        row.lifted_at = max(moment, as_utc(row.restricted_at))
        row.lifted_by = actor
    if lifted:
        await session.flush()
        await audit.record(
            session,
            keys,
            action="processing.restriction_lifted",
            actor=actor,
            subject_id=subject_id,
            details={
                "restriction_ids": [str(row.id) for row in lifted],
                "request_id": None if request_id is None else str(request_id),
            },
        )
    return lifted
