"""The influence part of the graph: reviews and votes, referrals, social profiles."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from core.clock import utcnow
from graph import hooks
from graph.customers import get_active_customer, get_customer, owner_of
from graph.enums import ReferralStatus, SocialPlatform
from graph.errors import GraphErrorCode, graph_error
from graph.models import Customer, FollowerCount, Referral, Review, ReviewVote, SocialProfile
from privacy.fields import FieldCipher

MAX_REVIEW_TEXT = 5000
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


async def submit_review(
    session: AsyncSession,
    cipher: FieldCipher,
    *,
    customer_id: uuid.UUID,
    product_sku: str,
    rating: int,
    text: str | None,
    now: datetime | None = None,
) -> Review:
    """A review; its text is encrypted under the author's key so erasure reaches it."""
    author = await get_active_customer(session, customer_id)
    sku = product_sku.strip()
    if not sku or len(sku) > 64:
        raise graph_error(GraphErrorCode.INVALID_INPUT, "a sku has 1-64 characters", "productSku")
    if not 1 <= rating <= 5:
        raise graph_error(GraphErrorCode.INVALID_INPUT, "rating is 1 to 5", "rating")
    if text is not None and len(text) > MAX_REVIEW_TEXT:
        raise graph_error(
            GraphErrorCode.INVALID_INPUT, f"at most {MAX_REVIEW_TEXT} characters", "text"
        )
    review = Review(
        customer_id=author.id, product_sku=sku, rating=rating, created_at=now or utcnow()
    )
    review.text_ct = await cipher.encrypt(
        author.id, table="review", column="text_ct", row_id=review.id, value=text or None
    )
    try:
        async with session.begin_nested():
            session.add(review)
            await session.flush()
    except IntegrityError:
        raise graph_error(
            GraphErrorCode.DUPLICATE_REVIEW, "this customer has reviewed this product", "productSku"
        ) from None
    await hooks.publish(session, hooks.ReviewSubmitted(review))
    return review


async def vote_review(
    session: AsyncSession,
    *,
    review_id: uuid.UUID,
    voter_id: uuid.UUID,
    helpful: bool,
    now: datetime | None = None,
) -> Review:
    """One vote per voter and review; voting again changes the vote."""
    review = await session.get(Review, review_id)
    if review is None:
        raise graph_error(GraphErrorCode.REVIEW_NOT_FOUND, "no such review", "reviewId")
    voter = await get_active_customer(session, voter_id, "voterId")
    author = await session.get(Customer, review.customer_id)
    assert author is not None
    if owner_of(author) == voter.id:
        raise graph_error(
            GraphErrorCode.OWN_REVIEW_VOTE, "authors cannot vote on their own review", "reviewId"
        )
    vote = (
        await session.execute(
            select(ReviewVote).where(
                col(ReviewVote.review_id) == review.id, col(ReviewVote.voter_id) == voter.id
            )
        )
    ).scalar_one_or_none()
    if vote is None:
        session.add(
            ReviewVote(
                review_id=review.id, voter_id=voter.id, helpful=helpful, created_at=now or utcnow()
            )
        )
    else:
        vote.helpful = helpful
    await session.flush()
    return review


def new_referral_code() -> str:
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(8))


async def create_referral(
    session: AsyncSession,
    *,
    referrer_id: uuid.UUID,
    code: str | None = None,
    now: datetime | None = None,
) -> Referral:
    """An invitation with a code the referrer shares (one code, one referee)."""
    referrer = await get_active_customer(session, referrer_id, "referrerId")
    if code is not None:
        code = code.strip().upper()
        if not 4 <= len(code) <= 32 or not code.isalnum():
            raise graph_error(
                GraphErrorCode.INVALID_INPUT, "a code has 4-32 letters or digits", "code"
            )
    referral = Referral(
        referrer_id=referrer.id, code=code or new_referral_code(), created_at=now or utcnow()
    )
    try:
        async with session.begin_nested():
            session.add(referral)
            await session.flush()
    except IntegrityError:
        raise graph_error(
            GraphErrorCode.REFERRAL_CODE_TAKEN, "this code is taken", "code"
        ) from None
    return referral


async def accept_referral(
    session: AsyncSession,
    *,
    code: str,
    referee_id: uuid.UUID,
    now: datetime | None = None,
) -> Referral:
    referral = (
        await session.execute(
            select(Referral).where(col(Referral.code) == code.strip().upper()).with_for_update()
        )
    ).scalar_one_or_none()
    if referral is None:
        raise graph_error(GraphErrorCode.REFERRAL_NOT_FOUND, "no such referral code", "code")
    if referral.referee_id is not None:
        raise graph_error(GraphErrorCode.REFERRAL_ALREADY_USED, "this code has been used", "code")
    referee = await get_active_customer(session, referee_id)
    referrer = (await get_customer(session, referral.referrer_id)).id
    if referrer == referee.id:
        raise graph_error(GraphErrorCode.SELF_REFERRAL, "customers cannot refer themselves", "code")
    already = (
        await session.execute(
            select(col(Referral.id)).where(col(Referral.referee_id) == referee.id).limit(1)
        )
    ).scalar_one_or_none()
    if already is not None:
        raise graph_error(
            GraphErrorCode.ALREADY_REFERRED, "this customer was referred already", "customerId"
        )
    referral.referee_id = referee.id
    referral.status = ReferralStatus.REGISTERED
    referral.registered_at = now or utcnow()
    await session.flush()
    return referral


def normalise_handle(handle: str) -> str:
    cleaned = handle.strip().lstrip("@").lower()
    if not cleaned or len(cleaned) > 100 or any(ch.isspace() for ch in cleaned):
        raise graph_error(
            GraphErrorCode.INVALID_INPUT, "a handle has 1-100 characters, no spaces", "handle"
        )
    return cleaned


async def link_social_profile(
    session: AsyncSession,
    cipher: FieldCipher,
    *,
    customer_id: uuid.UUID,
    platform: SocialPlatform,
    handle: str,
    followers: int,
    now: datetime | None = None,
) -> SocialProfile:
    """Link (or refresh the follower count of) a social profile."""
    now = now or utcnow()
    customer = await get_active_customer(session, customer_id)
    if not 0 <= followers <= 2_000_000_000:
        raise graph_error(
            GraphErrorCode.INVALID_INPUT, "followers must not be negative", "followers"
        )
    normalised = normalise_handle(handle)
    index = cipher.blind_index(kind=f"SOCIAL_{platform}", value=normalised)
    profile = (
        await session.execute(
            select(SocialProfile).where(
                col(SocialProfile.platform) == platform,
                col(SocialProfile.handle_index) == index,
            )
        )
    ).scalar_one_or_none()
    if profile is not None:
        if (await get_customer(session, profile.customer_id)).id != customer.id:
            raise graph_error(
                GraphErrorCode.SOCIAL_PROFILE_TAKEN,
                "this profile is linked to someone else",
                "handle",
            )
        changed = profile.followers != followers
        profile.followers = followers
        profile.updated_at = now
        if changed:
            session.add(FollowerCount(profile_id=profile.id, followers=followers, observed_at=now))
    else:
        profile = SocialProfile(
            customer_id=customer.id,
            platform=platform,
            handle_index=index,
            followers=followers,
            linked_at=now,
            updated_at=now,
        )
        profile.handle_ct = await cipher.encrypt(
            customer.id,
            table="social_profile",
            column="handle_ct",
            row_id=profile.id,
            value=normalised,
        )
        session.add(profile)
        await session.flush()  # the count refers to the profile: the profile goes in first
        session.add(FollowerCount(profile_id=profile.id, followers=followers, observed_at=now))
    await session.flush()
    return profile
