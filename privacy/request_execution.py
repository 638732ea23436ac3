"""Executing a data subject request: one function per kind, each calling the privacy service
that owns the work, inside the caller's transaction.

- ACCESS: `subject_rights.access_package`; the JSON and the HTML page are stored with the
  request encrypted under the subject's data key (never plaintext), so erasing the subject
  makes them unreadable too.
- RECTIFICATION: `subject_rights.rectify_subject` with the changes stored (encrypted) with the
  request; the audit trail gets the field names and ciphertext digests, never values.
- BLOCKING: `enforcement.restrict_processing`: the subject's data is kept but not processed.
- DESTRUCTION: `subject_rights.destroy_subject`: crypto-shredding and a certificate.
- CONSENT_WITHDRAWAL: `consent.withdraw_consent` for the purpose (and channel) named.

Each returns the request's `outcome`: what was done, without personal data.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import DomainError
from privacy.consent import Evidence, withdraw_consent
from privacy.enforcement import restrict_processing
from privacy.fields import FieldCipher
from privacy.purposes import CollectionChannel, CollectionMethod, MarketingChannel, Purpose
from privacy.request_errors import RequestErrorCode, as_request_error, request_error
from privacy.request_models import REQUEST_TABLE, DataSubjectRequest, RequestKind
from privacy.request_queries import read_changes
from privacy.subject_rights import access_package, destroy_subject, rectify_subject

Outcome = dict[str, Any]


async def execute(
    session: AsyncSession,
    cipher: FieldCipher,
    *,
    request: DataSubjectRequest,
    actor: str,
    at: datetime,
) -> Outcome:
    """Do what the request asks; a service's expected failure comes back under the request's
    error codes (`as_request_error`)."""
    kind = RequestKind(request.kind)
    try:
        if kind is RequestKind.ACCESS:
            return await _access(session, cipher, request)
        if kind is RequestKind.RECTIFICATION:
            return await _rectify(session, cipher, request, actor)
        if kind is RequestKind.BLOCKING:
            return await _block(session, cipher, request, actor, at)
        if kind is RequestKind.DESTRUCTION:
            return await _destroy(session, cipher, request, actor)
        return await _withdraw(session, cipher, request)
    except DomainError as error:
        raise as_request_error(error) from None


async def _access(
    session: AsyncSession, cipher: FieldCipher, request: DataSubjectRequest
) -> Outcome:

    package = await access_package(session, cipher, subject_id=request.subject_id)
    as_json = json.dumps(package.as_json(), ensure_ascii=False, sort_keys=True, default=str)
    as_html = package.as_html()
    subject = request.subject_id
    request.package_json_ct = await cipher.encrypt(
        subject, table=REQUEST_TABLE, column="package_json", row_id=request.id, value=as_json
    )
    request.package_html_ct = await cipher.encrypt(
        subject, table=REQUEST_TABLE, column="package_html", row_id=request.id, value=as_html
    )
    return {"package": {"json_bytes": len(as_json.encode()), "html_bytes": len(as_html.encode())}}


async def _rectify(
    session: AsyncSession, cipher: FieldCipher, request: DataSubjectRequest, actor: str
) -> Outcome:

    changes = await read_changes(cipher, request)
    if not changes:
        raise request_error(
            RequestErrorCode.EXECUTION_FAILED, "the requested changes can no longer be read"
        )
    done = await rectify_subject(
        session, cipher, subject_id=request.subject_id, changes=changes, actor=actor
    )
    return {
        "changes": [
            {
                "field": change.field,
                "table": change.table,
                "before": change.before,
                "after": change.after,
            }
            for change in done
        ]
    }


async def _block(
    session: AsyncSession,
    cipher: FieldCipher,
    request: DataSubjectRequest,
    actor: str,
    at: datetime,
) -> Outcome:

    await restrict_processing(
        session,
        cipher.keys,
        subject_id=request.subject_id,
        request_id=request.id,
        actor=actor,
        at=at,
    )
    return {"restricted": True}


async def _destroy(
    session: AsyncSession, cipher: FieldCipher, request: DataSubjectRequest, actor: str
) -> Outcome:

    certificate = await destroy_subject(
        session, cipher, subject_id=request.subject_id, actor=actor, request_id=request.id
    )
    return {"certificate_id": str(certificate.id), "certificate_digest": certificate.digest}


async def _withdraw(
    session: AsyncSession, cipher: FieldCipher, request: DataSubjectRequest
) -> Outcome:
    if request.purpose is None:
        raise request_error(RequestErrorCode.PURPOSE_REQUIRED, "the request names no purpose")
    purpose = Purpose(request.purpose)
    channel = MarketingChannel(request.channel) if request.channel else None
    # The evidence is the request itself: withdrawn when the subject's request was received.
    evidence = Evidence(
        occurred_at=request.received_at,
        collected_channel=CollectionChannel(request.received_via),
        method=CollectionMethod.WRITTEN_REQUEST,
        actor=request.submitted_by,
    )
    await withdraw_consent(
        session,
        cipher,
        subject_id=request.subject_id,
        purpose=purpose,
        channel=channel,
        evidence=evidence,
    )
    return {"purpose": purpose.value, "channel": None if channel is None else channel.value}
