"""GraphQL: consentAuditExport (compliance officers and admins).

The mutation writes a signed export under the exports directory and returns a short-lived
download link to `/exports/{id}`. Any other role gets a top-level FORBIDDEN, like every role
check (api/schema/access.py), and nothing is written.
"""

from __future__ import annotations

from datetime import date, datetime

import strawberry

from api.auth import Role
from api.context import Info
from api.schema.access import require_roles
from api.schema.common import to_global_id
from api.schema.enums import Long
from api.schema.transaction import in_transaction
from core.errors import DomainError
from privacy.export_models import ExportFile as ExportFileRow
from privacy.exports import (
    ConsentAuditFilter,
    ExportErrorCode,
    ExportFormat,
    create_consent_audit_export,
    download_token,
)
from privacy.purposes import ConsentStatus, MarketingChannel, Purpose

strawberry.enum(ExportFormat, name="ExportFormat")
strawberry.enum(ExportErrorCode, name="ExportErrorCode")

EXPORTERS = (Role.COMPLIANCE, Role.ADMIN)


@strawberry.type(description="An expected failure of an export: nothing was written.")
class ExportUserError:
    code: ExportErrorCode
    message: str
    field: list[str] | None = strawberry.field(description="Path of the input field at fault.")


def export_user_error(error: DomainError) -> ExportUserError:
    field = ["input", *error.field] if error.field else None
    return ExportUserError(
        code=ExportErrorCode(str(error.code)), message=error.message, field=field
    )


@strawberry.input(description="Which consent changes to export; every filter is optional.")
class ConsentAuditExportInput:
    format: ExportFormat
    date_from: date | None = strawberry.field(
        default=None, name="from", description="First day (Moscow calendar), inclusive."
    )
    date_to: date | None = strawberry.field(
        default=None, name="to", description="Last day (Moscow calendar), inclusive."
    )
    purpose: Purpose | None = None
    channel: MarketingChannel | None = strawberry.field(
        default=None, description="A marketing channel (other purposes have none)."
    )
    status: ConsentStatus | None = None
    document_version: int | None = None

    def filters(self) -> ConsentAuditFilter:
        return ConsentAuditFilter.build(
            date_from=self.date_from,
            date_to=self.date_to,
            purpose=self.purpose,
            channel=self.channel,
            status=self.status,
            document_version=self.document_version,
        )


@strawberry.type(description="A signed export file and a short-lived link to download it.")
class ExportFile:
    id: strawberry.ID
    kind: str
    format: ExportFormat
    rows: Long
    size_bytes: Long
    sha256: str = strawberry.field(description="SHA-256 of the file's bytes (hex).")
    created_at: datetime
    expires_at: datetime = strawberry.field(description="After this the file is not served.")
    url: str = strawberry.field(
        description="`/exports/{id}?token=...`; append `.sig` to the id for the signature."
    )
    url_expires_at: datetime

    @classmethod
    def with_link(cls, info: Info, row: ExportFileRow) -> ExportFile:
        token, link_expires = download_token(
            info.context.provider, export_id=row.id, actor=info.context.principal.actor
        )
        return cls(
            id=to_global_id("ExportFile", row.id),
            kind=row.kind,
            format=ExportFormat(row.format),
            rows=Long(row.rows),
            size_bytes=Long(row.size_bytes),
            sha256=row.sha256,
            created_at=row.created_at,
            expires_at=row.expires_at,
            url=f"/exports/{row.id}?token={token}",
            url_expires_at=min(link_expires, row.expires_at),
        )


@strawberry.type
class ConsentAuditExportPayload:
    export: ExportFile | None = None
    errors: list[ExportUserError] = strawberry.field(default_factory=list)


class ExportQuery:
    """Decorate with @strawberry.type once it has fields (build.py mixes it into Query)."""


@strawberry.type
class ExportMutation:
    @strawberry.mutation(
        description="Export the consent history as a signed CSV, JSON or XLSX file (compliance)."
    )
    async def consent_audit_export(
        self, info: Info, input: ConsentAuditExportInput
    ) -> ConsentAuditExportPayload:
        require_roles(info, *EXPORTERS)
        context = info.context
        row, errors = await in_transaction(
            info,
            lambda session: create_consent_audit_export(
                session,
                context.provider,
                filters=input.filters(),
                format=input.format,
                directory=context.settings.exports_dir,
                actor=context.principal.actor,
            ),
            as_error=export_user_error,
        )
        if row is None:
            return ConsentAuditExportPayload(errors=errors)
        return ConsentAuditExportPayload(export=ExportFile.with_link(info, row))
