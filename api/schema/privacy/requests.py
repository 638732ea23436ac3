"""GraphQL: dataSubjectRequestSubmit/Process, dataSubjectRequests."""

from __future__ import annotations


class RequestQuery:
    """Decorate with @strawberry.type once it has fields (build.py mixes it into Query)."""


class RequestMutation:
    """Decorate with @strawberry.type once it has fields (build.py mixes it into Mutation)."""
