"""GraphQL types of a customer: the customer node, identities, profile and RFM facts."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, TypeVar

import strawberry

from api.context import Info
from api.schema.access import may_read_personal, require_personal
from api.schema.common import DEFAULT_PAGE, page_size, to_global_id
from api.schema.enums import Long
from api.schema.loaders import EventsKey, ReviewsKey, Sealed
from api.schema.node import Connection, Node, connection
from core.clock import utcnow
from graph import models, queries
from graph.enums import Channel, CustomerStatus, EventType, IdentityKind
from graph.queries import LIST_LIMIT

if TYPE_CHECKING:
    from api.schema.events.types import EventNode, Purchase
    from api.schema.identity.types import DuplicateCandidate
    from api.schema.influence.types import Referral, Review, SocialProfile
    from api.schema.loyalty.types import LoyaltyAccount
    from api.schema.privacy.consent import ConsentType
    from api.schema.scoring.types import CustomerScores, Influence

N = TypeVar("N")


@strawberry.type
class Money:
    amount_minor: Long
    currency: str


@strawberry.type(
    description="Decrypted personal data; readable by the customer and by staff roles allowed to."
)
class Profile:
    first_name: str | None
    last_name: str | None
    birth_date: dt.date | None
    address: str | None


@strawberry.type
class Identity(Node):
    kind: IdentityKind
    source_system: str | None
    verified: bool
    channel: Channel
    first_seen: dt.datetime
    last_seen: dt.datetime
    row: strawberry.Private[models.Identity]
    owner_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_row(cls, row: models.Identity, owner_id: uuid.UUID) -> Identity:
        return cls(
            id=to_global_id("Identity", row.id),
            kind=IdentityKind(row.kind),
            source_system=row.source_system,
            verified=row.verified,
            channel=Channel(row.channel),
            first_seen=row.first_seen,
            last_seen=row.last_seen,
            row=row,
            owner_id=owner_id,
        )

    @strawberry.field(description="The normalised identifier (personal data).")
    async def value(self, info: Info) -> str | None:
        require_personal(info, self.owner_id)
        return await info.context.loaders.plaintext.load(
            Sealed("identity", "value_ct", self.row.id, self.row.value_ct)
        )


@strawberry.type(description="Recency, frequency and monetary facts computed from raw events.")
class RfmFacts:
    facts: strawberry.Private[queries.RfmFacts]
    now: strawberry.Private[dt.datetime]

    @strawberry.field(description="The instant the day counts are measured to.")
    def as_of(self) -> dt.datetime:
        return self.now

    @strawberry.field(description="Whole days from the last purchase to `asOf` (floored).")
    def recency_days(self) -> int | None:
        return self.facts.recency_days(self.now)

    @strawberry.field
    def frequency(self) -> int:
        return self.facts.frequency

    @strawberry.field(description="Net spend: purchases minus returns.")
    def monetary(self) -> Money:
        return Money(amount_minor=Long(self.facts.monetary_minor), currency=self.facts.currency)

    @strawberry.field
    def average_check(self) -> Money | None:
        value = self.facts.average_check_minor
        return (
            None if value is None else Money(amount_minor=Long(value), currency=self.facts.currency)
        )

    @strawberry.field
    def average_inter_purchase_days(self) -> float | None:
        return self.facts.average_interpurchase_days

    @strawberry.field(description="Whole days from the first purchase to `asOf` (floored).")
    def lifetime_days(self) -> int | None:
        return self.facts.lifetime_days(self.now)


@strawberry.input
class EventFilter:
    types: list[EventType] | None = None
    channels: list[Channel] | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def to_query(self) -> queries.EventFilter:
        return queries.EventFilter(
            types=tuple(sorted(str(t) for t in self.types or ())),
            channels=tuple(sorted(str(c) for c in self.channels or ())),
            since=self.since,
            until=self.until,
        )


async def _events_page(
    info: Info, owner: uuid.UUID, first: int | None, after: str | None, filt: queries.EventFilter
) -> tuple[list[models.Event], bool]:
    size = page_size(first)
    cursor = info.context.cursors.decode("event", after)
    rows = await info.context.loaders.events.load(
        EventsKey(owner=owner, first=size, after=cursor, filter=filt)
    )
    return rows[:size], len(rows) > size


@strawberry.type
class Customer(Node):
    status: CustomerStatus
    registered_channel: Channel
    created_at: dt.datetime
    registered_at: dt.datetime = strawberry.field(
        description="Member since: the registration date given (import, staff) or the first "
        "recorded activity, whichever is earlier. `createdAt` is when the row was written."
    )
    row: strawberry.Private[models.Customer]

    @classmethod
    def from_row(cls, row: models.Customer) -> Customer:
        return cls(
            id=to_global_id("Customer", row.id),
            status=CustomerStatus(row.status),
            registered_channel=Channel(row.registered_channel),
            created_at=row.created_at,
            registered_at=row.registered_at,
            row=row,
        )

    @strawberry.field(description=f"Identifiers, oldest first (the first {LIST_LIMIT}).")
    async def identities(self, info: Info) -> list[Identity]:
        rows = await info.context.loaders.identities.load(self.row.id)
        return [Identity.from_row(row, self.row.id) for row in rows]

    @strawberry.field(description="Personal data. FORBIDDEN for roles that may not read it.")
    async def profile(self, info: Info) -> Profile | None:
        require_personal(info, self.row.id)
        found = await info.context.loaders.profile.load(self.row)
        if found is None:
            return None
        return Profile(
            first_name=found.first_name,
            last_name=found.last_name,
            birth_date=found.birth_date,
            address=found.address,
        )

    @strawberry.field(description="Events newest first, with keyset pagination.")
    async def events(
        self,
        info: Info,
        first: int | None = DEFAULT_PAGE,
        after: str | None = None,
        filter: EventFilter | None = None,
    ) -> Connection[Annotated[EventNode, strawberry.lazy("api.schema.events.types")]]:
        from api.schema.events.types import event_node

        filt = filter.to_query() if filter else queries.EventFilter()
        rows, more = await _events_page(info, self.row.id, first, after, filt)
        return _event_page(info, [event_node(row) for row in rows], rows, more)

    @strawberry.field(description="Purchases newest first.")
    async def purchases(
        self, info: Info, first: int | None = DEFAULT_PAGE, after: str | None = None
    ) -> Connection[Annotated[Purchase, strawberry.lazy("api.schema.events.types")]]:
        from api.schema.events.types import Purchase

        filt = queries.EventFilter(types=(EventType.PURCHASE.value,))
        rows, more = await _events_page(info, self.row.id, first, after, filt)
        return _event_page(info, [Purchase.from_row(row) for row in rows], rows, more)

    @strawberry.field(
        description="Pending duplicate candidates of this customer, best first (operators and "
        "admins; FORBIDDEN for other roles)."
    )
    async def possible_duplicates(
        self, info: Info
    ) -> list[Annotated[DuplicateCandidate, strawberry.lazy("api.schema.identity.types")]]:
        from api.auth import Role
        from api.schema.access import require_roles
        from api.schema.identity.types import DuplicateCandidate

        require_roles(info, Role.OPERATOR, Role.ADMIN)
        rows = await info.context.loaders.identity.possible_duplicates.load(self.row.id)
        return [DuplicateCandidate.from_row(row) for row in rows]

    @strawberry.field
    async def reviews(
        self, info: Info, first: int | None = DEFAULT_PAGE
    ) -> list[Annotated[Review, strawberry.lazy("api.schema.influence.types")]]:
        from api.schema.influence.types import Review

        rows = await info.context.loaders.reviews.load(ReviewsKey(self.row.id, page_size(first)))
        return [Review.from_row(row) for row in rows]

    @strawberry.field(description=f"Referrals this customer made (the first {LIST_LIMIT}).")
    async def referrals_made(
        self, info: Info
    ) -> list[Annotated[Referral, strawberry.lazy("api.schema.influence.types")]]:
        from api.schema.influence.types import Referral

        rows = await info.context.loaders.referrals_made.load(self.row.id)
        return [Referral.from_row(row) for row in rows]

    @strawberry.field
    async def referred_by(
        self, info: Info
    ) -> Annotated[Referral, strawberry.lazy("api.schema.influence.types")] | None:
        from api.schema.influence.types import Referral

        row = await info.context.loaders.referred_by.load(self.row.id)
        return None if row is None else Referral.from_row(row)

    @strawberry.field
    async def social_profiles(
        self, info: Info
    ) -> list[Annotated[SocialProfile, strawberry.lazy("api.schema.influence.types")]]:
        from api.schema.influence.types import SocialProfile

        rows = await info.context.loaders.social.load(self.row.id)
        return [SocialProfile.from_row(row, self.row.id) for row in rows]

    @strawberry.field
    async def rfm(self, info: Info) -> RfmFacts:
        facts = await info.context.loaders.rfm.load(self.row.id)
        if facts is None:
            facts = queries.RfmFacts(info.context.settings.currency, 0, 0, 0, None, None)
        # One instant, to the second, for every day count of this answer (stated in `asOf`).
        return RfmFacts(facts=facts, now=utcnow().replace(microsecond=0))

    @strawberry.field(description="Points, tier and ledger; null while no program is loaded.")
    async def loyalty(
        self, info: Info
    ) -> Annotated[LoyaltyAccount, strawberry.lazy("api.schema.loyalty.types")] | None:
        from api.schema.loyalty.types import loyalty_account

        return await loyalty_account(info, self.row.id)

    @strawberry.field(
        description="Current consents with their document versions (the customer and staff)."
    )
    async def consents(
        self, info: Info
    ) -> list[Annotated[ConsentType, strawberry.lazy("api.schema.privacy.consent")]]:
        from api.schema.privacy.consent import customer_consents

        return await customer_consents(info, self.row.id)

    @strawberry.field(
        description="Churn and value scores of the champion models (staff only); null when "
        "never scored, or when the customer may not be profiled (no consent, or blocked)."
    )
    async def scores(
        self, info: Info
    ) -> Annotated[CustomerScores, strawberry.lazy("api.schema.scoring.types")] | None:
        from api.schema.scoring.types import scores_of

        return await scores_of(info, self.row.id)

    @strawberry.field(
        description="Influence through referrals and reviews (staff only); null as for scores."
    )
    async def influence(
        self, info: Info
    ) -> Annotated[Influence, strawberry.lazy("api.schema.scoring.types")] | None:
        from api.schema.scoring.types import influence_of

        return await influence_of(info, self.row.id)

    @strawberry.field(description="True when the caller may read this customer's personal data.")
    def can_read_personal_data(self, info: Info) -> bool:
        return may_read_personal(info, self.row.id)


def _event_page(
    info: Info, nodes: Sequence[N], rows: list[models.Event], more: bool
) -> Connection[N]:
    cursors = [info.context.cursors.encode("event", row.occurred_at, row.id) for row in rows]
    return connection(nodes, cursors, more=more)
