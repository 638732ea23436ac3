"""Rectification (152-FZ art. 21 part 2): the data changes through the graph's own services,
identifiers are re-indexed, and the audit trail keeps before/after as ciphertext digests only."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from core.db import transaction
from core.errors import DomainError
from graph.customers import decrypt_profile
from graph.errors import GraphErrorCode
from graph.models import Customer
from privacy.audit import ciphertext_digest, verify_chain
from privacy.fields import FieldCipher
from privacy.models import AuditEntry
from privacy.subject_rights import SubjectRightsErrorCode, rectify_subject
from tests.api.operations import CUSTOMER_BY_IDENTIFIER
from tests.integration.test_erasure import LAST, PHONE, seed

NEW_LAST = "Zhukovskaya-Lermontova"
NEW_PHONE = "+7 926 777-88-99"


async def _snapshot(sessions, subject):
    async with sessions() as session:
        customer = await session.get(Customer, subject)
        audit = (await session.execute(select(func.count()).select_from(AuditEntry))).scalar_one()
        assert customer is not None
        return customer.last_name_ct, audit


async def test_rectified_name_and_phone_change_through_the_graph_and_are_audited_as_digests(
    sessions, provider, gql
) -> None:
    # given
    seeded = await seed(sessions, provider)
    before_ct, _ = await _snapshot(sessions, seeded.subject)

    # when
    async with transaction(sessions) as session:
        changes = await rectify_subject(
            session,
            FieldCipher(session, provider),
            subject_id=seeded.duplicate,  # an old id reaches the survivor
            changes={"last_name": NEW_LAST, "phone": NEW_PHONE},
            actor="staff:compliance",
        )

    # then the new values are stored and the phone is found under its new blind index only
    async with sessions() as session:
        customer = await session.get(Customer, seeded.subject)
        assert customer is not None
        profile = await decrypt_profile(FieldCipher(session, provider), customer)
        entry = (
            await session.execute(
                select(AuditEntry).where(AuditEntry.action == "subject.rectified")
            )
        ).scalar_one()
        assert (await verify_chain(session)).ok
    assert profile.last_name == NEW_LAST
    new = await gql.data(CUSTOMER_BY_IDENTIFIER, {"kind": "PHONE", "value": NEW_PHONE})
    old = await gql.data(CUSTOMER_BY_IDENTIFIER, {"kind": "PHONE", "value": PHONE})
    assert old["customerByIdentifier"] is None
    assert new["customerByIdentifier"] is not None
    # and the audit trail holds digests of the ciphertext before and after, no plaintext
    assert {c.field for c in changes} == {"last_name", "phone"}
    assert entry.details["last_name"]["before"] == ciphertext_digest(before_ct)
    assert entry.details["last_name"]["after"] == ciphertext_digest(customer.last_name_ct)
    assert entry.details["phone"]["before"] and entry.details["phone"]["after"]
    logged = json.dumps(entry.details) + entry.actor + str(entry.subject)
    for plaintext in (LAST, NEW_LAST, "9267778899", "9165551234", str(seeded.subject)):
        assert plaintext not in logged


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"last_name": NEW_LAST, "shoe_size": "42"}, SubjectRightsErrorCode.UNKNOWN_FIELD),
        ({}, SubjectRightsErrorCode.NOTHING_TO_CHANGE),
        ({"last_name": NEW_LAST, "phone": "not a phone"}, GraphErrorCode.INVALID_PHONE),
        ({"last_name": NEW_LAST, "birth_date": "17.05.1990"}, GraphErrorCode.INVALID_INPUT),
    ],
)
async def test_bad_rectification_is_a_typed_error_and_changes_nothing(
    sessions, provider, changes, code
) -> None:
    # given
    seeded = await seed(sessions, provider)
    before = await _snapshot(sessions, seeded.subject)

    # when
    with pytest.raises(DomainError) as error:
        async with transaction(sessions) as session:
            await rectify_subject(
                session,
                FieldCipher(session, provider),
                subject_id=seeded.subject,
                changes=changes,
                actor="staff:compliance",
            )

    # then
    assert error.value.code == code
    assert await _snapshot(sessions, seeded.subject) == before
