"""Consent audit exports: filters and row counts, CSV/JSON/XLSX that read back the same rows
and break their signature on one changed byte, the GraphQL mutation for compliance officers,
and `/exports/{id}` links that expire and open only their own export."""

from __future__ import annotations

import csv
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import func, select

from core.clock import utcnow
from core.db import transaction
from core.errors import DomainError
from privacy.audit import verify_chain
from privacy.consent_models import Consent, ConsentChange, ConsentDocument
from privacy.export_models import ExportFile
from privacy.exports import (
    COLUMNS,
    LINK_TTL,
    ConsentAuditFilter,
    ExportErrorCode,
    ExportFormat,
    create_consent_audit_export,
    download_token,
    write_consent_audit,
    write_signed_consent_audit,
)
from privacy.keys import LocalKeyring
from privacy.models import AuditEntry
from privacy.signing import verify_file

EXPORT = """
mutation($input: ConsentAuditExportInput!) {
  consentAuditExport(input: $input) {
    export { id kind format rows sizeBytes sha256 url urlExpiresAt expiresAt }
    errors { code message field }
  }
}"""

IP_CIPHERTEXT = b"\x01ciphertext-of-an-ip-address-203.0.113.7"


@dataclass
class History:
    """Ids of the seeded consent changes, by name."""

    ids: dict[str, uuid.UUID]

    def named(self, *names: str) -> list[str]:
        """The ids in export order: by time, then by id (two changes share a time)."""
        ordered = sorted(names, key=lambda name: (CHANGES[name][5], str(self.ids[name])))
        return [str(self.ids[name]) for name in ordered]


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# name: (subject, purpose, channel, status, document, occurred_at UTC)
CHANGES = {
    "a_sms_granted": ("a", "MARKETING", "SMS", "GRANTED", "mkt1", "2026-01-10T09:00:00"),
    "a_sms_withdrawn": ("a", "MARKETING", "SMS", "WITHDRAWN", "mkt1", "2026-02-15T12:00:00"),
    "a_profiling": ("a", "PROFILING", "ANY", "GRANTED", "prof1", "2026-02-20T08:00:00"),
    "b_email_v2": ("b", "MARKETING", "EMAIL", "GRANTED", "mkt2", "2026-03-01T21:30:00"),
    "b_loyalty": ("b", "LOYALTY_PARTICIPATION", "ANY", "GRANTED", "loy1", "2026-03-05T10:00:00"),
    "c_sms_v2": ("c", "MARKETING", "SMS", "GRANTED", "mkt2", "2026-03-05T10:00:00"),
}


async def seed_consent_history(sessions) -> History:
    """Documents, consents and their history written directly (the consent service is tested
    on its own); the IP evidence is an opaque ciphertext that must never reach an export."""
    subjects = {name: uuid.uuid4() for name in "abc"}
    documents = {
        "mkt1": ("MARKETING", 1),
        "mkt2": ("MARKETING", 2),
        "prof1": ("PROFILING", 1),
        "loy1": ("LOYALTY_PARTICIPATION", 1),
    }
    ids: dict[str, uuid.UUID] = {}
    async with transaction(sessions) as session:
        rows = {}
        for key, (purpose, version) in documents.items():
            text = f"{purpose} consent, version {version}"
            rows[key] = ConsentDocument(
                purpose=purpose,
                language="ru",
                version=version,
                title=f"{purpose} v{version}",
                text=text,
                text_hash=hashlib.sha256(text.encode()).hexdigest(),
                valid_from=_at("2025-01-01T00:00:00"),
            )
            session.add(rows[key])
        await session.flush()
        consents: dict[tuple[str, str, str], Consent] = {}
        for name, (who, purpose, channel, status, doc, at) in CHANGES.items():
            key = (who, purpose, channel)
            if key not in consents:
                consents[key] = Consent(
                    subject_id=subjects[who],
                    purpose=purpose,
                    channel=channel,
                    status=status,
                    document_id=rows[doc].id,
                    granted_at=_at(at),
                )
                session.add(consents[key])
                await session.flush()
            change = ConsentChange(
                consent_id=consents[key].id,
                subject_id=subjects[who],
                purpose=purpose,
                channel=channel,
                status=status,
                document_id=rows[doc].id,
                occurred_at=_at(at),
                collected_channel="WEB",
                method="CHECKBOX",
                actor="app:web",
                ip_ct=IP_CIPHERTEXT,
                user_agent_ct=IP_CIPHERTEXT,
            )
            session.add(change)
            await session.flush()
            ids[name] = change.id
    return History(ids)


@pytest.fixture
async def history(sessions) -> History:
    return await seed_consent_history(sessions)


def _read_rows(path: Path, format: ExportFormat) -> list[dict]:
    if format is ExportFormat.CSV:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return list(csv.DictReader(handle))
    if format is ExportFormat.JSON:
        return json.loads(path.read_text(encoding="utf-8"))
    book = openpyxl.load_workbook(path, read_only=True)
    sheet = book.worksheets[0]
    values = list(sheet.iter_rows(values_only=True))
    header = [str(name).removesuffix(" (UTC)") for name in values[0]]
    return [dict(zip(header, row, strict=True)) for row in values[1:]]


async def _export_ids(sessions, tmp_path, **filters) -> list[str]:
    path = tmp_path / f"{uuid.uuid4()}.csv"
    async with sessions() as session:
        count = await write_consent_audit(
            session,
            filters=ConsentAuditFilter.build(**filters),
            format=ExportFormat.CSV,
            output=path,
        )
    rows = _read_rows(path, ExportFormat.CSV)
    assert count == len(rows)
    return [row["change_id"] for row in rows]


# --- filters and formats ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, list(CHANGES)),
        ({"purpose": "marketing"}, ["a_sms_granted", "a_sms_withdrawn", "b_email_v2", "c_sms_v2"]),
        (
            {"purpose": "MARKETING", "channel": "SMS"},
            ["a_sms_granted", "a_sms_withdrawn", "c_sms_v2"],
        ),
        ({"status": "WITHDRAWN"}, ["a_sms_withdrawn"]),
        ({"purpose": "MARKETING", "document_version": 2}, ["b_email_v2", "c_sms_v2"]),
        (
            {"date_from": date(2026, 2, 1), "date_to": date(2026, 2, 28)},
            ["a_sms_withdrawn", "a_profiling"],
        ),
        # 2026-03-01 21:30 UTC is already March 2nd in Moscow: periods are Moscow days.
        ({"date_from": date(2026, 3, 2), "date_to": date(2026, 3, 2)}, ["b_email_v2"]),
        ({"date_to": date(2026, 3, 1)}, ["a_sms_granted", "a_sms_withdrawn", "a_profiling"]),
        ({"purpose": "CROSS_BORDER_TRANSFER"}, []),
    ],
)
async def test_filters_select_exactly_the_matching_changes(
    sessions, history, tmp_path, filters, expected
):
    assert await _export_ids(sessions, tmp_path, **filters) == history.named(*expected)


@pytest.mark.parametrize("format", list(ExportFormat))
async def test_each_format_holds_every_row_in_order_and_breaks_its_signature_on_one_byte(
    sessions, provider, history, tmp_path, format
):
    output = tmp_path / f"consent.{format}"
    seen: list[int] = []
    async with sessions() as session:
        written = await write_signed_consent_audit(
            session,
            provider,
            filters=ConsentAuditFilter.build(),
            format=format,
            output=output,
            progress=seen.append,
            page=5,  # two keyset pages, the boundary between two changes at the same time
        )

    rows = _read_rows(output, format)
    assert written.rows == len(rows) == len(CHANGES)
    assert [str(row["change_id"]) for row in rows] == history.named(*CHANGES)
    assert list(rows[0]) == list(COLUMNS)
    assert seen == [5, 6]
    email = next(row for row in rows if str(row["change_id"]) == str(history.ids["b_email_v2"]))
    assert str(email["document_version"]) == "2" and email["channel"] == "EMAIL"
    assert email["evidence_method"] == "CHECKBOX" and email["actor"] == "app:web"
    assert not (output.parent / f"{output.name}.part").exists()
    result = verify_file(output, provider)
    assert result.ok, result.reason
    assert result.metadata["rows"] == len(CHANGES) and result.metadata["format"] == format

    data = bytearray(output.read_bytes())
    data[len(data) // 2] ^= 0x01
    output.write_bytes(bytes(data))
    assert not verify_file(output, provider).ok


async def test_exports_hold_no_evidence_that_is_personal_data(
    sessions, provider, history, tmp_path
):
    for format in ExportFormat:
        output = tmp_path / f"consent.{format}"
        async with sessions() as session:
            await write_consent_audit(
                session, filters=ConsentAuditFilter.build(), format=format, output=output
            )
        raw = output.read_bytes()
        assert b"ciphertext-of-an-ip" not in raw and b"203.0.113.7" not in raw
    assert not {"ip", "ip_ct", "user_agent", "user_agent_ct"} & set(COLUMNS)


async def test_the_signature_records_the_audit_log_head(sessions, provider, history, tmp_path):
    from privacy.audit import record

    async with transaction(sessions) as session:
        entry = await record(session, provider, action="test.noted", actor="staff:test")
    output = tmp_path / "consent.json"
    async with sessions() as session:
        await write_signed_consent_audit(
            session,
            provider,
            filters=ConsentAuditFilter.build(),
            format=ExportFormat.JSON,
            output=output,
        )

    head = verify_file(output, provider).metadata["audit_head"]
    assert head == {"seq": entry.seq, "hash": entry.hash}


@pytest.mark.parametrize(
    ("filters", "code", "field"),
    [
        ({"date_from": date(2026, 3, 2), "date_to": date(2026, 3, 1)}, "INVALID_PERIOD", ["to"]),
        ({"status": "MAYBE"}, "INVALID_FILTER", ["status"]),
        ({"purpose": "drop table;"}, "INVALID_FILTER", ["purpose"]),
        ({"document_version": 0}, "INVALID_FILTER", ["documentVersion"]),
    ],
)
def test_bad_filters_are_typed_errors(filters, code, field):
    with pytest.raises(DomainError) as raised:
        ConsentAuditFilter.build(**filters)
    assert raised.value.code == ExportErrorCode(code) and raised.value.field == field


# --- GraphQL and the download route --------------------------------------------------------


async def _count(sessions, model) -> int:
    async with sessions() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def _audit_actions(sessions) -> list[str]:
    async with sessions() as session:
        rows = await session.execute(select(AuditEntry.action).order_by(AuditEntry.seq))
        return list(rows.scalars())


@pytest.mark.parametrize("role", ["compliance", "admin"])
async def test_compliance_exports_and_downloads_the_signed_file(
    gql, sessions, provider, settings, history, tmp_path, role
):
    # given a compliance officer's export of marketing consents as XLSX
    variables = {"input": {"format": "XLSX", "purpose": "MARKETING", "from": "2026-01-01"}}

    # when they run the mutation and follow the link
    data = await gql.data(EXPORT, variables, as_=role)
    payload = data["consentAuditExport"]
    download = await gql.client.get(payload["export"]["url"])
    raw_id = payload["export"]["url"].split("/exports/")[1].split("?")[0]
    token = payload["export"]["url"].split("token=")[1]
    signature = await gql.client.get(f"/exports/{raw_id}.sig?token={token}")

    # then the file has the four marketing changes, its bytes match, and its signature holds
    assert payload["errors"] == []
    export = payload["export"]
    assert export["rows"] == 4 and export["format"] == "XLSX" and export["kind"] == "consent_audit"
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert "attachment" in download.headers["content-disposition"]
    assert ".xlsx" in download.headers["content-disposition"]
    assert download.headers["cache-control"] == "no-store"
    assert hashlib.sha256(download.content).hexdigest() == export["sha256"]
    assert export["sizeBytes"] == len(download.content)
    assert signature.status_code == 200
    copy = tmp_path / "downloaded.xlsx"
    copy.write_bytes(download.content)
    (tmp_path / "downloaded.xlsx.sig").write_bytes(signature.content)
    assert verify_file(copy, provider).ok
    assert [str(r["change_id"]) for r in _read_rows(copy, ExportFormat.XLSX)] == history.named(
        "a_sms_granted", "a_sms_withdrawn", "b_email_v2", "c_sms_v2"
    )
    # and the export is recorded, audited, and the audit chain still verifies
    async with sessions() as session:
        row = await session.get(ExportFile, uuid.UUID(raw_id))
        assert row is not None and row.created_by == f"staff:{role}-dev"
        assert row.filters["purpose"] == "MARKETING" and row.filters["from"] == "2026-01-01"
        assert (await verify_chain(session)).ok
    assert await _audit_actions(sessions) == [
        "export.created",
        "export.downloaded",
        "export.downloaded",
    ]
    assert (settings.exports_dir / row.file_name).is_file()


@pytest.mark.parametrize("role", ["operator", "analyst", "app"])
async def test_other_roles_get_forbidden_and_nothing_is_written(
    gql, sessions, settings, history, role
):
    body = await gql.call(EXPORT, {"input": {"format": "CSV"}}, as_=role)

    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await _count(sessions, ExportFile) == 0
    assert await _count(sessions, AuditEntry) == 0
    assert list(settings.exports_dir.iterdir()) == []


async def test_a_bad_filter_is_a_payload_error_and_writes_nothing(gql, sessions, settings):
    variables = {"input": {"format": "JSON", "from": "2026-03-02", "to": "2026-03-01"}}

    payload = (await gql.data(EXPORT, variables, as_="compliance"))["consentAuditExport"]

    assert payload["export"] is None
    assert payload["errors"] == [
        {
            "code": "INVALID_PERIOD",
            "message": "the period ends before it starts",
            "field": ["input", "to"],
        }
    ]
    assert await _count(sessions, ExportFile) == 0
    assert list(settings.exports_dir.iterdir()) == []


async def _two_exports(sessions, provider, settings) -> tuple[ExportFile, ExportFile]:
    made = []
    for format in (ExportFormat.CSV, ExportFormat.JSON):
        async with transaction(sessions) as session:
            made.append(
                await create_consent_audit_export(
                    session,
                    provider,
                    filters=ConsentAuditFilter.build(),
                    format=format,
                    directory=settings.exports_dir,
                    actor="staff:compliance-dev",
                )
            )
    return made[0], made[1]


async def test_links_open_only_their_export_and_only_for_a_while(
    gql, sessions, provider, settings, tmp_path, history
):
    first, second = await _two_exports(sessions, provider, settings)
    good, _ = download_token(provider, export_id=first.id, actor="staff:x")
    expired, _ = download_token(
        provider,
        export_id=first.id,
        actor="staff:x",
        now=utcnow() - LINK_TTL - timedelta(minutes=1),
    )
    foreign_key, _ = download_token(
        LocalKeyring(tmp_path / "other-keyring.json"), export_id=first.id, actor="staff:x"
    )
    for_second, _ = download_token(provider, export_id=second.id, actor="staff:x")
    api_token = gql.token("compliance")  # a GraphQL bearer token is not a download link

    refused = {
        "expired": f"/exports/{first.id}?token={expired}",
        "forged": f"/exports/{first.id}?token={good[:-3]}{'AAA' if good[-3:] != 'AAA' else 'BBB'}",
        "other keyring": f"/exports/{first.id}?token={foreign_key}",
        "other export": f"/exports/{first.id}?token={for_second}",
        "other export's signature": f"/exports/{first.id}.sig?token={for_second}",
        "no token": f"/exports/{first.id}",
        "api token": f"/exports/{first.id}?token={api_token}",
    }
    for name, url in refused.items():
        response = await gql.client.get(url)
        assert response.status_code == 403, name
        assert first.sha256 not in response.text and "change_id" not in response.text, name

    assert (await gql.client.get(f"/exports/{first.id}?token={good}")).status_code == 200
    assert (await gql.client.get(f"/exports/{second.id}?token={for_second}")).status_code == 200
    assert (await gql.client.get(f"/exports/not-a-uuid?token={good}")).status_code == 404
    unknown = uuid.uuid4()
    unknown_token, _ = download_token(provider, export_id=unknown, actor="staff:x")
    assert (await gql.client.get(f"/exports/{unknown}?token={unknown_token}")).status_code == 404
    by_part = await gql.client.get(f"/exports/{first.id}?token={good}&part=signature")
    assert by_part.status_code == 200 and json.loads(by_part.content)["algorithm"] == "Ed25519"
    assert by_part.headers["content-type"].startswith("application/json")
    csv_body = await gql.client.get(f"/exports/{first.id}?token={good}")
    assert csv_body.headers["content-type"].startswith("text/csv")
    assert hashlib.sha256(csv_body.content).hexdigest() == first.sha256


async def test_an_expired_export_is_not_served(gql, sessions, provider, settings, history):
    async with transaction(sessions) as session:
        old = await create_consent_audit_export(
            session,
            provider,
            filters=ConsentAuditFilter.build(),
            format=ExportFormat.CSV,
            directory=settings.exports_dir,
            actor="staff:compliance-dev",
            now=utcnow() - timedelta(days=2),
        )
    token, _ = download_token(provider, export_id=old.id, actor="staff:x")

    response = await gql.client.get(f"/exports/{old.id}?token={token}")

    assert response.status_code == 404


async def test_a_failed_export_leaves_no_file_behind(sessions, provider, settings, history):
    class Broken(LocalKeyring):
        def secret(self, name: str) -> bytes:
            if name == "export_signing":
                raise RuntimeError("the KMS is down")
            return super().secret(name)

    broken = Broken(provider.path)
    with pytest.raises(RuntimeError):
        async with transaction(sessions) as session:
            await create_consent_audit_export(
                session,
                broken,
                filters=ConsentAuditFilter.build(),
                format=ExportFormat.XLSX,
                directory=settings.exports_dir,
                actor="staff:compliance-dev",
            )

    assert list(settings.exports_dir.iterdir()) == []
    assert await _count(sessions, ExportFile) == 0
