"""Consents in bulk: documents published from a file, consents imported with the same
validation, history and audit as consentGrant / consentWithdraw."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console
from sqlalchemy import func, select

from core.db import create_engine, session_factory, transaction
from core.settings import Settings
from graph.bulk_consents import bulk_import_consents
from graph.bulk_customers import bulk_import_customers
from privacy.audit import verify_chain
from privacy.consent_document_file import load_documents
from privacy.consent_models import Consent, ConsentChange
from privacy.keys import LocalKeyring
from privacy.models import AuditEntry

DOCUMENTS = """\
documents:
  - purpose: PROFILING
    language: ru
    title: Согласие на профилирование
    text: Я согласен на автоматизированную оценку.
    valid_from: 2020-01-01T00:00:00Z
  - purpose: MARKETING
    language: ru
    title: Согласие на рассылки
    text_file: marketing.txt
    valid_from: 2020-01-01T00:00:00Z
"""
CUSTOMERS = "channel,phone\nPOS,+79165550101\nPOS,+79165550102\n"
CONSENTS = """\
identifier_kind,identifier_value,action,purpose,channel,document_language,document_version,occurred_at,collected_channel,method,ip,user_agent
PHONE,+79165550101,GRANT,PROFILING,,ru,1,2023-01-01T10:00:00Z,PAPER,SIGNATURE,,
PHONE,+79165550102,GRANT,MARKETING,SMS,ru,1,2023-01-02T10:00:00Z,WEB,CHECKBOX,10.0.0.1,Mozilla/5.0
PHONE,+79165550102,WITHDRAW,MARKETING,SMS,,,2023-02-01T10:00:00Z,CONTACT_CENTER,RECORDED_CALL,,
PHONE,+79165550101,GRANT,PROFILING,,ru,7,2023-01-01T10:00:00Z,PAPER,SIGNATURE,,
PHONE,+79165550199,GRANT,PROFILING,,ru,1,2023-01-01T10:00:00Z,PAPER,SIGNATURE,,
PHONE,+79165550101,GRANT,MARKETING,,ru,1,2023-01-01T10:00:00Z,PAPER,SIGNATURE,,
PHONE,+79165550102,GRANT,PROFILING,,ru,1,,PAPER,SIGNATURE,,
PHONE,+79165550102,GRANT,PROFILING,,ru,1,0001-01-01T00:00:00+05:00,PAPER,SIGNATURE,,
,,,,,,,,,,,
"""


async def _counts(settings: Settings) -> tuple[int, int, int]:
    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine)() as session:
            counts = []
            for model in (Consent, ConsentChange, AuditEntry):
                result = await session.execute(select(func.count()).select_from(model))
                counts.append(int(result.scalar_one()))
            assert (await verify_chain(session)).ok
            return counts[0], counts[1], counts[2]
    finally:
        await engine.dispose()


async def test_documents_then_consents_load_with_history_and_audit(
    settings: Settings, provider: LocalKeyring, tmp_path: Path
) -> None:
    console = Console(file=io.StringIO())
    (tmp_path / "marketing.txt").write_text("Я согласен получать рассылки.", encoding="utf-8")
    (tmp_path / "documents.yaml").write_text(DOCUMENTS, encoding="utf-8")
    (tmp_path / "customers.csv").write_text(CUSTOMERS, encoding="utf-8")
    (tmp_path / "consents.csv").write_text(CONSENTS, encoding="utf-8")
    engine = create_engine(settings.database_url)
    try:
        sessions = session_factory(engine)
        # given documents published from a file (loading it again publishes nothing)
        for expected in (True, False):
            async with transaction(sessions) as session:
                loaded = await load_documents(
                    session, provider, tmp_path / "documents.yaml", actor="test"
                )
            assert [(item.purpose, item.version, item.published) for item in loaded] == [
                ("PROFILING", 1, expected),
                ("MARKETING", 1, expected),
            ]
    finally:
        await engine.dispose()
    await bulk_import_customers(settings, provider, tmp_path / "customers.csv", console=console)
    _, _, audit_before = await _counts(settings)
    # when the consents are imported
    report = await bulk_import_consents(
        settings, provider, tmp_path / "consents.csv", console=console, batch_rows=2
    )
    # then good rows are consents with their history and audit entries, bad ones reported
    assert (report.imported, report.skipped, report.empty) == (3, 0, 1)
    reasons = dict(report.failed)
    assert sorted(reasons) == [5, 6, 7, 8, 9]
    assert reasons[8] == "occurred_at is required"  # reported, not a crash of the batch
    assert "occurred_at" in reasons[9]  # a date-time before the epoch's range in UTC
    assert "document_version" in reasons[5]
    assert reasons[6].startswith("CUSTOMER_NOT_FOUND")
    assert reasons[7].startswith("CHANNEL_REQUIRED")
    assert all("+7916" not in reason for reason in reasons.values())
    consents, changes, audit_after = await _counts(settings)
    assert (consents, changes) == (2, 3)
    assert audit_after - audit_before == 3
    # when the same file is imported again, nothing is recorded twice
    again = await bulk_import_consents(
        settings, provider, tmp_path / "consents.csv", console=console
    )
    assert (again.imported, again.skipped) == (0, 3)
    assert await _counts(settings) == (consents, changes, audit_after)
