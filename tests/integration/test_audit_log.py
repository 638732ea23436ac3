"""The audit log's hash chain: appends (also concurrent ones) make one chain that verifies;
editing or deleting a row behind the application's back makes verification fail and name it."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid

from sqlalchemy import select, text

from core.db import transaction
from privacy.audit import GENESIS, pseudonym, record, verify_chain
from privacy.models import AuditEntry


async def _append(sessions, provider, count: int, *, start: int = 0) -> None:
    subject = uuid.uuid4()
    for number in range(start, start + count):
        async with transaction(sessions) as session:
            await record(
                session,
                provider,
                action="points.adjusted",
                actor="staff:operator-1",
                subject_id=subject,
                details={"n": number, "points": 10},
            )


async def _verify(sessions):
    async with sessions() as session:
        return await verify_chain(session)


async def _raw(sessions, statement: str, **params) -> None:
    async with transaction(sessions) as session:
        await session.execute(text(statement), params)


async def test_appended_entries_form_one_verifiable_chain(sessions, provider):
    subject = uuid.uuid4()

    await _append(sessions, provider, 5)
    async with transaction(sessions) as session:
        last = await record(
            session, provider, action="consent.granted", actor="app:web", subject_id=subject
        )

    report = await _verify(sessions)
    assert report.ok and report.entries == 6
    async with sessions() as session:
        entries = list(
            (await session.execute(select(AuditEntry).order_by(AuditEntry.seq))).scalars()
        )
    assert [entry.seq for entry in entries] == [1, 2, 3, 4, 5, 6]
    assert entries[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    # the subject appears only as a keyed pseudonym
    assert last.subject == pseudonym(provider, subject) and str(subject) not in last.subject


async def test_an_empty_log_verifies(sessions):
    report = await _verify(sessions)

    assert report.ok and report.entries == 0


async def test_concurrent_appends_keep_one_chain(sessions, provider):
    # given twenty writers appending at the same time, each in its own transaction
    async def one(number: int) -> None:
        async with transaction(sessions) as session:
            await record(
                session, provider, action="request.verified", actor=f"staff:{number}", details={}
            )

    # when they all run
    await asyncio.gather(*(one(number) for number in range(20)))

    # then there is one chain of twenty, not a fork
    report = await _verify(sessions)
    assert report.ok and report.entries == 20
    async with sessions() as session:
        actors = set((await session.execute(select(AuditEntry.actor))).scalars())
    assert actors == {f"staff:{number}" for number in range(20)}


async def test_editing_one_entrys_details_names_that_entry(sessions, provider, backend):
    await _append(sessions, provider, 6)
    forged = json.dumps({"n": 3, "points": 10_000})
    cast = "CAST(:details AS JSON)" if backend == "postgresql" else ":details"

    await _raw(sessions, f"UPDATE audit_entry SET details = {cast} WHERE seq = 4", details=forged)

    report = await _verify(sessions)
    assert not report.ok
    assert report.first_broken == 4 and report.entries == 3
    assert report.reason == "its contents do not match its hash"


async def test_editing_an_entry_and_its_hash_breaks_the_next_link(sessions, provider):
    # Rewriting the hash too (without rewriting every later entry) moves the break by one.
    await _append(sessions, provider, 5)

    await _raw(
        sessions,
        "UPDATE audit_entry SET actor = 'staff:someone-else', hash = :h WHERE seq = 2",
        h="f" * 64,
    )

    report = await _verify(sessions)
    assert not report.ok and report.first_broken == 2


async def test_deleting_a_middle_entry_names_the_entry_after_the_gap(sessions, provider):
    await _append(sessions, provider, 6)

    await _raw(sessions, "DELETE FROM audit_entry WHERE seq = 3")

    report = await _verify(sessions)
    assert not report.ok
    assert report.first_broken == 4 and report.entries == 2
    assert report.reason == "entry 3 is missing"


async def test_renumbering_after_a_deletion_is_still_caught(sessions, provider):
    # Deleting entry 3 and renumbering the rest hides the gap, but not the broken link.
    await _append(sessions, provider, 5)

    await _raw(sessions, "DELETE FROM audit_entry WHERE seq = 3")
    await _raw(sessions, "UPDATE audit_entry SET seq = 3 WHERE seq = 4")

    report = await _verify(sessions)
    assert not report.ok and report.first_broken == 3
    assert report.reason == "does not link to the entry before it"


async def test_verification_pages_through_long_logs(sessions, provider, monkeypatch):
    import privacy.audit

    monkeypatch.setattr(privacy.audit, "PAGE", 3)
    await _append(sessions, provider, 8)
    assert (await _verify(sessions)).ok

    await _raw(sessions, "UPDATE audit_entry SET action = 'points.deleted' WHERE seq = 7")

    report = await _verify(sessions)
    assert report.first_broken == 7 and report.entries == 6
