"""The breach register: 24- and 72-hour deadlines, notices, and bad input that changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from core.db import transaction
from core.errors import DomainError
from privacy.breach_models import Breach
from privacy.breaches import NoticeStage, list_breaches, mark_notified, record_breach

pytestmark = pytest.mark.asyncio

DETECTED = datetime(2026, 11, 20, 22, 30, tzinfo=UTC)
NOW = DETECTED + timedelta(hours=2)


async def _record(sessions, provider, **overrides):
    fields = {
        "detected_at": DETECTED,
        "description": "Backup bucket was readable without credentials for six hours",
        "data_categories": "phone, e-mail",
        "subjects_affected": 1200,
        "actor": "compliance:test",
        "now": NOW,
    } | overrides
    async with transaction(sessions) as session:
        return await record_breach(session, provider, **fields)


async def _count(sessions):
    async with sessions() as session:
        return (await session.execute(select(func.count()).select_from(Breach))).scalar_one()


async def test_deadlines_run_in_hours_from_detection(sessions, provider):
    breach = await _record(sessions, provider)
    assert breach.initial_due_at == DETECTED + timedelta(hours=24)
    assert breach.final_due_at == DETECTED + timedelta(hours=72)

    async with sessions() as session:
        (fresh,) = await list_breaches(session, open_only=True, now=NOW)
        assert fresh.overdue == []
        (later,) = await list_breaches(session, open_only=True, now=DETECTED + timedelta(hours=25))
        assert later.overdue == [NoticeStage.INITIAL]


async def test_a_late_notice_is_recorded_as_late_and_the_final_one_closes(sessions, provider):
    breach = await _record(sessions, provider)
    async with transaction(sessions) as session:
        await mark_notified(
            session,
            provider,
            breach_id=breach.id,
            stage=NoticeStage.INITIAL,
            actor="compliance:test",
            at=DETECTED + timedelta(hours=30),
        )
    async with transaction(sessions) as session:
        await mark_notified(
            session,
            provider,
            breach_id=breach.id,
            stage=NoticeStage.FINAL,
            actor="compliance:test",
            at=DETECTED + timedelta(hours=70),
        )
    async with sessions() as session:
        assert await list_breaches(session, open_only=True, now=NOW) == []
        (closed,) = await list_breaches(session, open_only=False, now=DETECTED + timedelta(days=9))
    assert closed.late == [NoticeStage.INITIAL] and closed.overdue == []


@pytest.mark.parametrize(
    "overrides",
    [
        {"detected_at": NOW + timedelta(minutes=1)},
        {"description": "short"},
        {"data_categories": "  "},
        {"subjects_affected": -1},
    ],
)
async def test_bad_input_is_refused_and_records_nothing(sessions, provider, overrides):
    with pytest.raises(DomainError) as error:
        await _record(sessions, provider, **overrides)
    assert error.value.code == "INVALID_INPUT"
    assert await _count(sessions) == 0


async def test_a_second_notice_for_one_stage_is_refused(sessions, provider):
    breach = await _record(sessions, provider)
    async with transaction(sessions) as session:
        await mark_notified(
            session, provider, breach_id=breach.id, stage=NoticeStage.INITIAL, actor="c", at=NOW
        )
    with pytest.raises(DomainError) as error:
        async with transaction(sessions) as session:
            await mark_notified(
                session,
                provider,
                breach_id=breach.id,
                stage=NoticeStage.INITIAL,
                actor="c",
                at=NOW + timedelta(hours=1),
            )
    assert error.value.code == "ALREADY_NOTIFIED"
    async with sessions() as session:
        row = await session.get(Breach, breach.id)
    assert row is not None and row.initial_notified_at == NOW
