"""GraphQL: consentAuditExport."""

from __future__ import annotations


class ExportQuery:
    """Decorate with @strawberry.type once it has fields (build.py mixes it into Query)."""


class ExportMutation:
    """Decorate with @strawberry.type once it has fields (build.py mixes it into Mutation)."""
