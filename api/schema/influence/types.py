"""GraphQL types of the influence graph: reviews, referrals, social profiles."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING, Annotated

import strawberry

from api.auth import Role
from api.context import Info
from api.schema.access import is_self, require_personal, visible_customer
from api.schema.common import to_global_id
from api.schema.loaders import Sealed
from api.schema.node import Node
from graph import models
from graph.enums import ReferralStatus, SocialPlatform

if TYPE_CHECKING:
    from api.schema.customer.types import Customer

CustomerRef = Annotated["Customer", strawberry.lazy("api.schema.customer.types")]


async def _customer(info: Info, customer_id: uuid.UUID | None) -> Customer | None:
    from api.schema.customer.types import Customer

    if customer_id is None:
        return None
    row = await visible_customer(info, customer_id)
    return None if row is None else Customer.from_row(row)


@strawberry.type
class Review(Node):
    product_sku: str
    rating: int
    created_at: dt.datetime
    row: strawberry.Private[models.Review]

    @classmethod
    def from_row(cls, row: models.Review) -> Review:
        return cls(
            id=to_global_id("Review", row.id),
            product_sku=row.product_sku,
            rating=row.rating,
            created_at=row.created_at,
            row=row,
        )

    @strawberry.field(
        description="Personal data: the author's own words, stored encrypted. Decrypted only "
        "for the author and for operators, compliance officers and admins (each staff read is "
        "audited); FORBIDDEN for analysts and apps. Null once the author's data was erased."
    )
    async def text(self, info: Info) -> str | None:
        author = await visible_customer(info, self.row.customer_id)
        if author is None:
            return None
        require_personal(info, author.id)  # the profile's rule, and its audit
        return await info.context.loaders.plaintext.load(
            Sealed("review", "text_ct", self.row.id, self.row.text_ct)
        )

    @strawberry.field
    async def helpful_votes(self, info: Info) -> int:
        return (await info.context.loaders.votes.load(self.row.id)).helpful

    @strawberry.field
    async def unhelpful_votes(self, info: Info) -> int:
        return (await info.context.loaders.votes.load(self.row.id)).unhelpful

    @strawberry.field
    async def author(self, info: Info) -> CustomerRef | None:
        return await _customer(info, self.row.customer_id)


@strawberry.type
class Referral(Node):
    status: ReferralStatus
    created_at: dt.datetime
    registered_at: dt.datetime | None
    converted_at: dt.datetime | None
    row: strawberry.Private[models.Referral]

    @classmethod
    def from_row(cls, row: models.Referral) -> Referral:
        return cls(
            id=to_global_id("Referral", row.id),
            status=ReferralStatus(row.status),
            created_at=row.created_at,
            registered_at=row.registered_at,
            converted_at=row.converted_at,
            row=row,
        )

    @strawberry.field(description="The invitation code: visible to the referrer, apps and staff.")
    async def code(self, info: Info) -> str | None:
        principal = info.context.principal
        if principal.is_staff or principal.has(Role.APP):
            return self.row.code
        referrer = await info.context.loaders.customer.load(self.row.referrer_id)
        return self.row.code if referrer is not None and is_self(info, referrer.id) else None

    @strawberry.field
    async def referrer(self, info: Info) -> CustomerRef | None:
        return await _customer(info, self.row.referrer_id)

    @strawberry.field
    async def referee(self, info: Info) -> CustomerRef | None:
        return await _customer(info, self.row.referee_id)


@strawberry.type
class SocialProfile(Node):
    platform: SocialPlatform
    followers: int
    linked_at: dt.datetime
    updated_at: dt.datetime
    row: strawberry.Private[models.SocialProfile]
    owner_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_row(cls, row: models.SocialProfile, owner_id: uuid.UUID) -> SocialProfile:
        return cls(
            id=to_global_id("SocialProfile", row.id),
            platform=SocialPlatform(row.platform),
            followers=row.followers,
            linked_at=row.linked_at,
            updated_at=row.updated_at,
            row=row,
            owner_id=owner_id,
        )

    @strawberry.field(description="The handle (personal data).")
    async def handle(self, info: Info) -> str | None:
        require_personal(info, self.owner_id)
        return await info.context.loaders.plaintext.load(
            Sealed("social_profile", "handle_ct", self.row.id, self.row.handle_ct)
        )
