"""The customer graph's personal data, registered with privacy (`install()`).

A data subject is a customer together with every customer merged into it (the survivor
chain), so each function here takes all their ids. Exports hold the subject's own data only:
a referral names no other person, a review shows how many found it helpful but not who.
Destruction deletes identifiers and social profiles (the blind-index rows), clears every
ciphertext column and marks the customers ERASED; events, reviews' ratings and referrals stay,
pointing to the now anonymous customer rows, so the books and other people's rewards still
add up.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from core.clock import utcnow
from graph.customers import (
    PROFILE_FIELDS,
    _clean_name,
    decrypt_profile,
    get_active_customer,
    link_identity,
    set_profile_field,
)
from graph.enums import Channel, CustomerStatus, IdentityKind
from graph.errors import GraphErrorCode, graph_error
from graph.identity import normalise
from graph.models import (
    Customer,
    Event,
    EventLine,
    FollowerCount,
    Identity,
    MergeRecord,
    Referral,
    Review,
    ReviewVote,
    SocialProfile,
)
from graph.resolution import privacy_source as resolution_privacy
from privacy import sources
from privacy.audit import ciphertext_digest
from privacy.fields import FieldCipher
from privacy.sources import ErasedItem, FieldChange, Section, SubjectScope

SOURCE = "customer graph (loyalgraph)"
OPERATOR = ("the operator's stores, web shop, mobile app and contact centre",)
LOYALTY_BASIS = (
    "consent of the data subject (152-FZ art. 6 part 1 item 1) and performance of the "
    "loyalty program terms the subject accepted (art. 6 part 1 item 5)"
)
PROFILE_RETENTION = (
    "while the subject takes part in the loyalty program; destroyed within 30 days of consent "
    "withdrawal or of the purpose being reached (152-FZ art. 21 part 5)"
)
BOOKS_RETENTION = (
    "5 years after the reporting year (402-FZ art. 29); on destruction the record stays "
    "without anything that identifies the subject"
)
IDENTIFIER_FIELDS = {"phone": IdentityKind.PHONE, "email": IdentityKind.EMAIL}


def _iso(value: datetime | date | None) -> str | None:
    return None if value is None else value.isoformat()


class GraphDirectory:
    """Resolves a customer id (current or merged) to the survivor and everyone merged into it."""

    async def resolve(self, session: AsyncSession, subject_id: uuid.UUID) -> SubjectScope | None:
        customer = await session.get(Customer, subject_id)
        if customer is None:
            return None
        primary = customer.survivor_id or customer.id
        merged = (
            (
                await session.execute(
                    select(col(Customer.id))
                    .where(col(Customer.survivor_id) == primary)
                    .order_by(col(Customer.created_at), col(Customer.id))
                )
            )
            .scalars()
            .all()
        )
        head = await session.get(Customer, primary)
        assert head is not None
        return SubjectScope(
            primary=primary,
            members=(primary, *merged),
            erased=head.status == CustomerStatus.ERASED,
        )


class GraphSource:
    name = "graph"
    editable = frozenset({*PROFILE_FIELDS, *IDENTIFIER_FIELDS})

    async def export(
        self, session: AsyncSession, cipher: FieldCipher, subject_ids: Sequence[uuid.UUID]
    ) -> list[Section]:
        ids = list(subject_ids)
        return [
            await self._profile(session, cipher, ids),
            await self._identifiers(session, cipher, ids),
            await self._events(session, ids),
            await self._reviews(session, cipher, ids),
            await self._votes(session, ids),
            await self._referrals(session, ids),
            await self._social(session, cipher, ids),
            await self._merges(session, cipher, ids),
        ]

    @staticmethod
    def _section(name: str, title: str, purposes: tuple[str, ...], **kw: Any) -> Section:
        return Section(
            name=name,
            title=title,
            source_system=kw.pop("source_system", SOURCE),
            purposes=purposes,
            legal_basis=kw.pop("legal_basis", LOYALTY_BASIS),
            recipients=kw.pop("recipients", OPERATOR),
            retention=kw.pop("retention", PROFILE_RETENTION),
            records=kw.pop("records"),
        )

    async def _profile(
        self, session: AsyncSession, cipher: FieldCipher, ids: list[uuid.UUID]
    ) -> Section:
        rows = await _customers(session, ids)
        records = []
        for row in rows:
            profile = await decrypt_profile(cipher, row)
            records.append(
                {
                    "customerId": str(row.id),
                    "status": row.status,
                    "mergedInto": str(row.survivor_id) if row.survivor_id else None,
                    "registeredChannel": row.registered_channel,
                    "registeredAt": _iso(row.created_at),
                    "firstName": profile.first_name,
                    "lastName": profile.last_name,
                    "birthDate": _iso(profile.birth_date),
                    "address": profile.address,
                }
            )
        return self._section(
            "profile",
            "Customer profile",
            ("loyalty program participation", "customer service"),
            records=records,
        )

    async def _identifiers(
        self, session: AsyncSession, cipher: FieldCipher, ids: list[uuid.UUID]
    ) -> Section:
        rows = (
            (
                await session.execute(
                    select(Identity)
                    .where(col(Identity.customer_id).in_(ids))
                    .order_by(col(Identity.first_seen), col(Identity.id))
                )
            )
            .scalars()
            .all()
        )
        await cipher.preload(row.value_ct for row in rows)
        records = [
            {
                "kind": row.kind,
                "value": await cipher.decrypt(
                    table="identity", column="value_ct", row_id=row.id, blob=row.value_ct
                ),
                "sourceSystem": row.source_system,
                "verified": row.verified,
                "channel": row.channel,
                "firstSeen": _iso(row.first_seen),
                "lastSeen": _iso(row.last_seen),
            }
            for row in rows
        ]
        return self._section(
            "identifiers",
            "Identifiers (phone, e-mail, cards, external ids)",
            ("identifying the customer across channels", "loyalty program participation"),
            records=records,
        )

    async def _events(self, session: AsyncSession, ids: list[uuid.UUID]) -> Section:
        events = (
            (
                await session.execute(
                    select(Event)
                    .where(col(Event.customer_id).in_(ids))
                    .order_by(col(Event.occurred_at), col(Event.id))
                )
            )
            .scalars()
            .all()
        )
        lines: dict[uuid.UUID, list[dict[str, Any]]] = {}
        if events:
            for line in (
                await session.execute(
                    select(EventLine)
                    .where(col(EventLine.event_id).in_([event.id for event in events]))
                    .order_by(col(EventLine.event_id), col(EventLine.line_no))
                )
            ).scalars():
                lines.setdefault(line.event_id, []).append(
                    {
                        "lineNo": line.line_no,
                        "sku": line.sku,
                        "category": line.category,
                        "quantity": line.quantity,
                        "unitPriceMinor": line.unit_price_minor,
                    }
                )
        records = [
            {
                "id": str(event.id),
                "type": event.type,
                "channel": event.channel,
                "occurredAt": _iso(event.occurred_at),
                "currency": event.currency,
                "amountMinor": event.amount_minor,
                "purchaseId": str(event.purchase_id) if event.purchase_id else None,
                "externalRef": event.external_ref,
                "topic": event.topic,
                "satisfaction": event.satisfaction,
                "campaign": event.campaign,
                "campaignChannel": event.campaign_channel,
                "action": event.action,
                "lines": lines.get(event.id, []),
            }
            for event in events
        ]
        return self._section(
            "events",
            "Purchases, returns, visits, contacts and campaign responses",
            ("loyalty program participation", "purchase history", "customer service"),
            retention=BOOKS_RETENTION,
            records=records,
        )

    async def _reviews(
        self, session: AsyncSession, cipher: FieldCipher, ids: list[uuid.UUID]
    ) -> Section:
        rows = (
            (
                await session.execute(
                    select(Review)
                    .where(col(Review.customer_id).in_(ids))
                    .order_by(col(Review.created_at), col(Review.id))
                )
            )
            .scalars()
            .all()
        )
        counts: dict[tuple[uuid.UUID, bool], int] = {}
        if rows:
            for review_id, helpful, count in (
                await session.execute(
                    select(col(ReviewVote.review_id), col(ReviewVote.helpful), func.count())
                    .where(col(ReviewVote.review_id).in_([row.id for row in rows]))
                    .group_by(col(ReviewVote.review_id), col(ReviewVote.helpful))
                )
            ).all():
                counts[(review_id, helpful)] = count
        await cipher.preload(row.text_ct for row in rows)
        records = [
            {
                "id": str(row.id),
                "productSku": row.product_sku,
                "rating": row.rating,
                "text": await cipher.decrypt(
                    table="review", column="text_ct", row_id=row.id, blob=row.text_ct
                ),
                "createdAt": _iso(row.created_at),
                "helpfulVotes": counts.get((row.id, True), 0),
                "unhelpfulVotes": counts.get((row.id, False), 0),
            }
            for row in rows
        ]
        return self._section(
            "reviews",
            "Product reviews written",
            ("publishing product reviews", "loyalty program participation"),
            recipients=("visitors of the operator's web shop and mobile app",),
            records=records,
        )

    async def _votes(self, session: AsyncSession, ids: list[uuid.UUID]) -> Section:
        rows = (
            await session.execute(
                select(ReviewVote, col(Review.product_sku))
                .join(Review, col(Review.id) == col(ReviewVote.review_id))
                .where(col(ReviewVote.voter_id).in_(ids))
                .order_by(col(ReviewVote.created_at), col(ReviewVote.id))
            )
        ).all()
        records = [
            {
                "reviewId": str(vote.review_id),
                "productSku": sku,
                "helpful": vote.helpful,
                "createdAt": _iso(vote.created_at),
            }
            for vote, sku in rows
        ]
        return self._section(
            "review_votes",
            "Votes on other customers' reviews",
            ("ranking product reviews",),
            records=records,
        )

    async def _referrals(self, session: AsyncSession, ids: list[uuid.UUID]) -> Section:
        rows = (
            (
                await session.execute(
                    select(Referral)
                    .where(
                        or_(col(Referral.referrer_id).in_(ids), col(Referral.referee_id).in_(ids))
                    )
                    .order_by(col(Referral.created_at), col(Referral.id))
                )
            )
            .scalars()
            .all()
        )
        members = set(ids)
        records = []
        for row in rows:
            # The other party is another person: only the fact that there is one is theirs.
            role = "REFERRER" if row.referrer_id in members else "REFEREE"
            records.append(
                {
                    "role": role,
                    "code": row.code,
                    "status": row.status,
                    "createdAt": _iso(row.created_at),
                    "registeredAt": _iso(row.registered_at),
                    "convertedAt": _iso(row.converted_at),
                    "otherPartyRegistered": row.referee_id is not None,
                }
            )
        return self._section(
            "referrals",
            "Referrals (invitations made and accepted)",
            ("referral program", "loyalty program participation"),
            records=records,
        )

    async def _social(
        self, session: AsyncSession, cipher: FieldCipher, ids: list[uuid.UUID]
    ) -> Section:
        rows = (
            (
                await session.execute(
                    select(SocialProfile)
                    .where(col(SocialProfile.customer_id).in_(ids))
                    .order_by(col(SocialProfile.linked_at), col(SocialProfile.id))
                )
            )
            .scalars()
            .all()
        )
        await cipher.preload(row.handle_ct for row in rows)
        history: dict[uuid.UUID, list[dict[str, Any]]] = {row.id: [] for row in rows}
        counts = await session.execute(
            select(FollowerCount)
            .where(col(FollowerCount.profile_id).in_(list(history)))
            .order_by(col(FollowerCount.observed_at), col(FollowerCount.id))
        )
        for count in counts.scalars():
            history[count.profile_id].append(
                {"followers": count.followers, "observedAt": _iso(count.observed_at)}
            )
        records = [
            {
                "platform": row.platform,
                "handle": await cipher.decrypt(
                    table="social_profile", column="handle_ct", row_id=row.id, blob=row.handle_ct
                ),
                "followers": row.followers,
                "followerHistory": history[row.id],
                "linkedAt": _iso(row.linked_at),
                "updatedAt": _iso(row.updated_at),
            }
            for row in rows
        ]
        return self._section(
            "social_profiles",
            "Linked social network profiles",
            ("measuring influence for the loyalty program",),
            records=records,
        )

    async def _merges(
        self, session: AsyncSession, cipher: FieldCipher, ids: list[uuid.UUID]
    ) -> Section:
        rows = (
            (
                await session.execute(
                    select(MergeRecord)
                    .where(
                        col(MergeRecord.survivor_id).in_(ids), col(MergeRecord.merged_id).in_(ids)
                    )
                    .order_by(col(MergeRecord.created_at), col(MergeRecord.id))
                )
            )
            .scalars()
            .all()
        )
        records = [
            {
                "survivorId": str(row.survivor_id),
                "mergedId": str(row.merged_id),
                "mergedAt": _iso(row.created_at),
                "reason": await cipher.decrypt(
                    table="merge_record", column="reason_ct", row_id=row.id, blob=row.reason_ct
                ),
                "undoneAt": _iso(row.undone_at),
            }
            for row in rows
        ]
        return self._section(
            "merges",
            "Duplicate records of the customer merged together",
            ("keeping one accurate customer record",),
            records=records,
        )

    async def rectify(
        self,
        session: AsyncSession,
        cipher: FieldCipher,
        subject_id: uuid.UUID,
        changes: Mapping[str, str | None],
        actor: str,
    ) -> list[FieldChange]:
        """Correct profile fields and the phone / e-mail through the graph's own services.

        Every value is validated before anything changes. A new phone or e-mail replaces the
        old ones of that kind (re-indexed under the blind index, verified as the old one was).
        """
        customer = await get_active_customer(session, subject_id)
        profile = {
            name: _profile_value(name, changes[name]) for name in PROFILE_FIELDS if name in changes
        }
        identifiers = {
            name: _identifier_value(kind, name, changes[name])
            for name, kind in IDENTIFIER_FIELDS.items()
            if name in changes
        }
        result: list[FieldChange] = []
        for name, value in profile.items():
            column = PROFILE_FIELDS[name]
            before = getattr(customer, column)
            await set_profile_field(cipher, customer, name, value)
            result.append(
                FieldChange(
                    name,
                    "customer",
                    str(customer.id),
                    ciphertext_digest(before),
                    ciphertext_digest(getattr(customer, column)),
                )
            )
        for name, value in identifiers.items():
            result.append(
                await _replace_identifier(
                    session, cipher, customer, IDENTIFIER_FIELDS[name], name, value
                )
            )
        customer.updated_at = utcnow()
        await session.flush()
        return result

    async def erase(
        self, session: AsyncSession, cipher: FieldCipher, subject_ids: Sequence[uuid.UUID]
    ) -> list[ErasedItem]:
        ids = list(subject_ids)
        now = utcnow()
        items = [
            ErasedItem(
                "identity",
                rows_deleted=await _delete(session, Identity, col(Identity.customer_id).in_(ids)),
            ),
            ErasedItem(
                "follower_count",
                rows_deleted=await _delete(
                    session,
                    FollowerCount,
                    col(FollowerCount.profile_id).in_(
                        select(col(SocialProfile.id)).where(col(SocialProfile.customer_id).in_(ids))
                    ),
                ),
            ),
            ErasedItem(
                "social_profile",
                rows_deleted=await _delete(
                    session, SocialProfile, col(SocialProfile.customer_id).in_(ids)
                ),
            ),
            ErasedItem(
                "customer",
                rows_anonymised=await _update(
                    session,
                    Customer,
                    col(Customer.id).in_(ids),
                    {
                        **{c: None for c in PROFILE_FIELDS.values()},
                        "status": CustomerStatus.ERASED,
                        "updated_at": now,
                    },
                ),
                columns_cleared=tuple(PROFILE_FIELDS.values()),
            ),
            ErasedItem(
                "review",
                rows_anonymised=await _update(
                    session, Review, col(Review.customer_id).in_(ids), {"text_ct": None}
                ),
                columns_cleared=("text_ct",),
            ),
            ErasedItem(
                "merge_record",
                rows_anonymised=await _update(
                    session,
                    MergeRecord,
                    or_(col(MergeRecord.survivor_id).in_(ids), col(MergeRecord.merged_id).in_(ids)),
                    {"reason_ct": None},
                ),
                columns_cleared=("reason_ct",),
            ),
            await _erase_referrals(session, ids),
            ErasedItem(
                "event",
                rows_retained=await _count(session, Event, col(Event.customer_id).in_(ids)),
            ),
            ErasedItem(
                "review_vote",
                rows_retained=await _count(session, ReviewVote, col(ReviewVote.voter_id).in_(ids)),
            ),
        ]
        await session.flush()
        # Objects loaded before the bulk statements must not write old values back.
        for customer in await _customers(session, ids):
            await session.refresh(customer)
        return items


def _profile_value(name: str, value: str | None) -> str | None:
    field = {"first_name": "firstName", "last_name": "lastName"}.get(name, name)
    if name != "birth_date":
        return _clean_name(value, field)
    if value is None:
        return None
    try:
        born = date.fromisoformat(value.strip())
    except ValueError:
        raise graph_error(
            GraphErrorCode.INVALID_INPUT, "a birth date is YYYY-MM-DD", "birthDate"
        ) from None
    if not date(1900, 1, 1) <= born <= utcnow().date():
        raise graph_error(GraphErrorCode.INVALID_INPUT, "birth date out of range", "birthDate")
    return born.isoformat()


def _identifier_value(kind: IdentityKind, name: str, value: str | None) -> str | None:
    return None if value is None else normalise(kind, value, field=(name,))


async def _replace_identifier(
    session: AsyncSession,
    cipher: FieldCipher,
    customer: Customer,
    kind: IdentityKind,
    name: str,
    value: str | None,
) -> FieldChange:
    old = list(
        (
            await session.execute(
                select(Identity)
                .join(Customer, col(Customer.id) == col(Identity.customer_id))
                .where(
                    col(Identity.kind) == kind,
                    or_(col(Customer.id) == customer.id, col(Customer.survivor_id) == customer.id),
                )
                .order_by(col(Identity.last_seen).desc())
            )
        )
        .scalars()
        .all()
    )
    before = ciphertext_digest(old[0].value_ct) if old else None
    verified = any(row.verified for row in old)
    for row in old:
        await session.delete(row)
    await session.flush()
    after = None
    if value is not None:
        identity = await link_identity(
            session,
            cipher,
            customer_id=customer.id,
            kind=kind,
            value=value,
            channel=Channel.CONTACT_CENTER,
            verified=verified,
        )
        after = ciphertext_digest(identity.value_ct)
        target = str(identity.id)
    else:
        remaining = await _count(session, Identity, _owned_by(customer.id))
        if remaining == 0:
            raise graph_error(
                GraphErrorCode.INVALID_INPUT,
                "a customer keeps at least one identifier; ask for destruction instead",
                name,
            )
        target = str(old[0].id) if old else ""
    return FieldChange(name, "identity", target, before, after)


def _owned_by(customer_id: uuid.UUID) -> Any:
    chain = select(col(Customer.id)).where(
        or_(col(Customer.id) == customer_id, col(Customer.survivor_id) == customer_id)
    )
    return col(Identity.customer_id).in_(chain)


async def _customers(session: AsyncSession, ids: list[uuid.UUID]) -> list[Customer]:
    rows = await session.execute(
        select(Customer).where(col(Customer.id).in_(ids)).order_by(col(Customer.created_at))
    )
    by_id = {row.id: row for row in rows.scalars()}
    return [by_id[i] for i in ids if i in by_id]


async def _count(session: AsyncSession, model: Any, where: Any) -> int:
    return int(
        (await session.execute(select(func.count()).select_from(model).where(where))).scalar_one()
    )


async def _delete(session: AsyncSession, model: Any, where: Any) -> int:
    count = await _count(session, model, where)
    await session.execute(delete(model).where(where).execution_options(synchronize_session=False))
    return count


async def _update(session: AsyncSession, model: Any, where: Any, values: dict[str, Any]) -> int:
    count = await _count(session, model, where)
    await session.execute(
        update(model).where(where).values(**values).execution_options(synchronize_session=False)
    )
    return count


async def _erase_referrals(session: AsyncSession, ids: list[uuid.UUID]) -> ErasedItem:
    """Unused invitations of the subject go; used ones stay (the other party's history) under
    a random code, since a code the subject chose may say who they are."""
    unused = (col(Referral.referrer_id).in_(ids)) & (col(Referral.referee_id).is_(None))
    deleted = await _delete(session, Referral, unused)
    used = list(
        (await session.execute(select(Referral).where(col(Referral.referrer_id).in_(ids))))
        .scalars()
        .all()
    )
    for row in used:
        row.code = "X" + secrets.token_hex(12).upper()
    retained = await _count(session, Referral, col(Referral.referee_id).in_(ids))
    return ErasedItem(
        "referral",
        rows_deleted=deleted,
        rows_anonymised=len(used),
        columns_cleared=("code",) if used else (),
        rows_retained=retained,
    )


_directory = GraphDirectory()
_source = GraphSource()


def install() -> None:
    """Register the graph's personal data and its subject directory with privacy (idempotent)."""
    sources.register(_source)
    sources.register_directory(_directory)
    resolution_privacy.install()
