"""Customer mutations: register, link an identifier, merge, unmerge."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import TYPE_CHECKING, Annotated

import strawberry

from api.auth import Role
from api.context import Info
from api.schema.access import require_acting_for, require_roles, require_roles_if
from api.schema.common import UserError, customer_uuid
from api.schema.customer.types import Customer, Identity
from api.schema.transaction import in_transaction
from graph.customers import link_identity
from graph.enums import Channel, IdentityKind
from graph.merge import merge_customers, unmerge_customer
from graph.resolution.models import DuplicateCandidate as DuplicateCandidateRow
from graph.resolution.registration import register_and_match

if TYPE_CHECKING:
    from api.schema.identity.types import DuplicateCandidate

WRITERS = (Role.APP, Role.OPERATOR, Role.ADMIN)
MERGERS = (Role.OPERATOR, Role.ADMIN)


@strawberry.input
class CustomerRegisterInput:
    channel: Channel
    phone: str | None = None
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    birth_date: dt.date | None = None
    address: str | None = None
    external_id: str | None = None
    external_system: str | None = strawberry.field(
        default=None, description="Source system of `externalId`; defaults to the channel."
    )
    loyalty_card: str | None = None
    phone_verified: bool = strawberry.field(
        default=False,
        description="True only when the channel confirmed the phone (an SMS code, OTP). "
        "Only verified identifiers find an existing customer.",
    )
    email_verified: bool = strawberry.field(
        default=False, description="True only when the channel confirmed the e-mail."
    )
    registered_at: dt.datetime | None = strawberry.field(
        default=None,
        description="Member since (staff only, e.g. moving a member from another system); "
        "defaults to now. An earlier date moves an existing customer's date back.",
    )


@strawberry.type
class CustomerRegisterPayload:
    customer: Customer | None = None
    created: bool = strawberry.field(
        default=False, description="False when the identifiers found an existing customer."
    )
    errors: list[UserError] = strawberry.field(default_factory=list)
    candidates: strawberry.Private[list[DuplicateCandidateRow]] = dataclasses.field(
        default_factory=list
    )

    @strawberry.field(
        description="Customers this registration may duplicate, for staff (operators and "
        "admins); empty for other callers."
    )
    def possible_duplicates(
        self, info: Info
    ) -> list[Annotated[DuplicateCandidate, strawberry.lazy("api.schema.identity.types")]]:
        if not info.context.principal.has(Role.OPERATOR, Role.ADMIN):
            return []
        from api.schema.identity.types import DuplicateCandidate as Candidate

        return [Candidate.from_row(row) for row in self.candidates]


@strawberry.input
class IdentityLinkInput:
    customer_id: strawberry.ID
    kind: IdentityKind
    value: str
    channel: Channel
    source_system: str | None = None
    verified: bool = strawberry.field(
        default=False,
        description="Asserted by apps and staff after confirming it (OTP); customers cannot.",
    )


@strawberry.type
class IdentityLinkPayload:
    identity: Identity | None = None
    customer: Customer | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class CustomersMergeInput:
    customer_ids: list[strawberry.ID]
    survivor_id: strawberry.ID | None = strawberry.field(
        default=None, description="Who survives; by default the longest-standing customer."
    )
    reason: str | None = None


@strawberry.type
class CustomersMergePayload:
    survivor: Customer | None = None
    merged_customer_id: strawberry.ID | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class CustomerUnmergeInput:
    customer_id: strawberry.ID = strawberry.field(description="The customer that was merged away.")


@strawberry.type
class CustomerUnmergePayload:
    customer: Customer | None = None
    survivor: Customer | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class CustomerMutation:
    @strawberry.mutation
    async def customer_register(
        self, info: Info, input: CustomerRegisterInput
    ) -> CustomerRegisterPayload:
        require_roles(info, *WRITERS)
        require_roles_if(info, input.registered_at is not None, *MERGERS)
        ctx = info.context
        result, errors = await in_transaction(
            info,
            lambda session: register_and_match(
                session,
                ctx.cipher,
                channel=input.channel,
                phone=input.phone,
                email=input.email,
                first_name=input.first_name,
                last_name=input.last_name,
                birth_date=input.birth_date,
                address=input.address,
                external_id=input.external_id,
                external_system=input.external_system,
                loyalty_card=input.loyalty_card,
                phone_verified=input.phone_verified,
                email_verified=input.email_verified,
                registered_at=input.registered_at,
            ),
        )
        if result is None:
            return CustomerRegisterPayload(errors=errors)
        registered, candidates = result
        return CustomerRegisterPayload(
            customer=Customer.from_row(registered.customer),
            created=registered.created,
            candidates=candidates,
        )

    @strawberry.mutation
    async def identity_link(self, info: Info, input: IdentityLinkInput) -> IdentityLinkPayload:
        customer_id = customer_uuid(input.customer_id)
        await require_acting_for(info, customer_id, *WRITERS)
        require_roles_if(info, input.verified, *WRITERS)
        ctx = info.context
        identity, errors = await in_transaction(
            info,
            lambda session: link_identity(
                session,
                ctx.cipher,
                customer_id=customer_id,
                kind=input.kind,
                value=input.value,
                channel=input.channel,
                source_system=input.source_system,
                verified=input.verified,
            ),
        )
        if identity is None:
            return IdentityLinkPayload(errors=errors)
        owner = await ctx.loaders.customer.load(identity.customer_id)
        assert owner is not None
        return IdentityLinkPayload(
            identity=Identity.from_row(identity, owner.id), customer=Customer.from_row(owner)
        )

    @strawberry.mutation(description="Merge two records of one person (staff).")
    async def customers_merge(
        self, info: Info, input: CustomersMergeInput
    ) -> CustomersMergePayload:
        require_roles(info, *MERGERS)
        ids = [customer_uuid(value) for value in input.customer_ids]
        survivor_id = customer_uuid(input.survivor_id) if input.survivor_id else None
        ctx = info.context
        result, errors = await in_transaction(
            info,
            lambda session: merge_customers(
                session,
                ctx.cipher,
                customer_ids=ids,
                survivor_id=survivor_id,
                actor=ctx.principal.actor,
                reason=input.reason,
            ),
        )
        if result is None:
            return CustomersMergePayload(errors=errors)
        merged = Customer.from_row(result.merged)
        return CustomersMergePayload(
            survivor=Customer.from_row(result.survivor), merged_customer_id=merged.id
        )

    @strawberry.mutation(description="Undo a merge: both customers come back as they were.")
    async def customer_unmerge(
        self, info: Info, input: CustomerUnmergeInput
    ) -> CustomerUnmergePayload:
        require_roles(info, *MERGERS)
        customer_id = customer_uuid(input.customer_id)
        ctx = info.context
        result, errors = await in_transaction(
            info,
            lambda session: unmerge_customer(
                session,
                ctx.provider,
                customer_id=customer_id,
                actor=ctx.principal.actor,
            ),
        )
        if result is None:
            return CustomerUnmergePayload(errors=errors)
        return CustomerUnmergePayload(
            customer=Customer.from_row(result.merged), survivor=Customer.from_row(result.survivor)
        )
