"""Influence mutations: reviews, votes, referrals, social profiles."""

from __future__ import annotations

import strawberry

from api.auth import Role
from api.context import Info
from api.schema.access import require_acting_for
from api.schema.common import UserError, customer_uuid, from_global_id
from api.schema.influence.types import Referral, Review, SocialProfile
from api.schema.transaction import in_transaction
from graph.enums import SocialPlatform
from graph.influence import (
    accept_referral,
    create_referral,
    link_social_profile,
    submit_review,
    vote_review,
)

ACTORS = (Role.APP, Role.OPERATOR, Role.ADMIN)


@strawberry.input
class ReviewSubmitInput:
    customer_id: strawberry.ID
    product_sku: str
    rating: int
    text: str | None = None


@strawberry.type
class ReviewPayload:
    review: Review | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class ReviewVoteInput:
    review_id: strawberry.ID
    voter_id: strawberry.ID
    helpful: bool


@strawberry.input
class ReferralCreateInput:
    referrer_id: strawberry.ID
    code: str | None = strawberry.field(
        default=None, description="A vanity code; generated if absent."
    )


@strawberry.input
class ReferralAcceptInput:
    code: str
    customer_id: strawberry.ID


@strawberry.type
class ReferralPayload:
    referral: Referral | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class SocialProfileLinkInput:
    customer_id: strawberry.ID
    platform: SocialPlatform
    handle: str
    followers: int = 0


@strawberry.type
class SocialProfileLinkPayload:
    social_profile: SocialProfile | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class InfluenceMutation:
    @strawberry.mutation
    async def review_submit(self, info: Info, input: ReviewSubmitInput) -> ReviewPayload:
        customer_id = customer_uuid(input.customer_id)
        await require_acting_for(info, customer_id, *ACTORS)
        ctx = info.context
        review, errors = await in_transaction(
            info,
            lambda session: submit_review(
                session,
                ctx.cipher,
                customer_id=customer_id,
                product_sku=input.product_sku,
                rating=input.rating,
                text=input.text,
            ),
        )
        return ReviewPayload(review=Review.from_row(review) if review else None, errors=errors)

    @strawberry.mutation
    async def review_vote(self, info: Info, input: ReviewVoteInput) -> ReviewPayload:
        voter_id = customer_uuid(input.voter_id)
        await require_acting_for(info, voter_id, *ACTORS)
        review_id = from_global_id(input.review_id, expected="Review")[1]
        review, errors = await in_transaction(
            info,
            lambda session: vote_review(
                session,
                review_id=review_id,
                voter_id=voter_id,
                helpful=input.helpful,
            ),
        )
        return ReviewPayload(review=Review.from_row(review) if review else None, errors=errors)

    @strawberry.mutation
    async def referral_create(self, info: Info, input: ReferralCreateInput) -> ReferralPayload:
        referrer_id = customer_uuid(input.referrer_id)
        await require_acting_for(info, referrer_id, *ACTORS)
        referral, errors = await in_transaction(
            info,
            lambda session: create_referral(
                session,
                referrer_id=referrer_id,
                code=input.code,
            ),
        )
        return ReferralPayload(
            referral=Referral.from_row(referral) if referral else None, errors=errors
        )

    @strawberry.mutation
    async def referral_accept(self, info: Info, input: ReferralAcceptInput) -> ReferralPayload:
        referee_id = customer_uuid(input.customer_id)
        await require_acting_for(info, referee_id, *ACTORS)
        referral, errors = await in_transaction(
            info,
            lambda session: accept_referral(
                session,
                code=input.code,
                referee_id=referee_id,
            ),
        )
        return ReferralPayload(
            referral=Referral.from_row(referral) if referral else None, errors=errors
        )

    @strawberry.mutation
    async def social_profile_link(
        self, info: Info, input: SocialProfileLinkInput
    ) -> SocialProfileLinkPayload:
        customer_id = customer_uuid(input.customer_id)
        await require_acting_for(info, customer_id, *ACTORS)
        ctx = info.context
        profile, errors = await in_transaction(
            info,
            lambda session: link_social_profile(
                session,
                ctx.cipher,
                customer_id=customer_id,
                platform=input.platform,
                handle=input.handle,
                followers=input.followers,
            ),
        )
        if profile is None:
            return SocialProfileLinkPayload(errors=errors)
        owner = await ctx.loaders.customer.load(profile.customer_id)
        assert owner is not None
        return SocialProfileLinkPayload(social_profile=SocialProfile.from_row(profile, owner.id))
