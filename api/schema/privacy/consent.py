"""GraphQL: consentGrant, consentWithdraw, consentDocuments, marketingAudience."""

from __future__ import annotations


class ConsentQuery:
    """Decorate with @strawberry.type once it has fields (build.py mixes it into Query)."""


class ConsentMutation:
    """Decorate with @strawberry.type once it has fields (build.py mixes it into Mutation)."""
