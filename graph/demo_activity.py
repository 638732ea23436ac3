"""What the demo people do: purchases, returns, visits, contacts, campaign responses, reviews.

Each person's activity comes from their own `random.Random`, seeded from the demo seed and the
person's position, so the shape does not depend on batching. Rows are plain dicts ready for a
bulk INSERT; nothing here touches the database or plaintext personal data.
"""

from __future__ import annotations

import bisect
import itertools
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from graph.demo_calendar import DAYS, Calendar, poisson, weighted
from graph.demo_data import (
    CAMPAIGNS,
    CATEGORIES,
    CHURN_TOPICS,
    CONTACT_TOPICS,
    REVIEWS_EN,
    REVIEWS_RU,
)
from graph.demo_world import Person, ReferralSeed, Sku, World
from graph.enums import CampaignAction, Channel, EventType, ReferralStatus

CURRENCY = "RUB"
ONLINE = (Channel.WEB, Channel.MOBILE_APP)
CHANNELS = (Channel.POS, *ONLINE)
EVENT_COLUMNS = (
    "id", "customer_id", "type", "channel", "store_id", "occurred_at", "recorded_at",
    "idempotency_key", "request_hash", "external_ref", "currency", "amount_minor", "purchase_id",
    "topic", "satisfaction", "campaign", "campaign_channel", "action",
)  # fmt: skip
_EMPTY_EVENT: dict[str, Any] = dict.fromkeys(EVENT_COLUMNS)


@dataclass(frozen=True, slots=True)
class Campaign:
    day: int
    code: str
    name: str
    channel: Channel


@dataclass(frozen=True, slots=True)
class Bought:
    sku: str
    at: datetime
    returned: bool


@dataclass(slots=True)
class Batch:
    """Rows of a block of people, in foreign-key order: events, then returns, then lines."""

    events: list[dict[str, Any]] = field(default_factory=list)
    returns: list[dict[str, Any]] = field(default_factory=list)
    lines: list[dict[str, Any]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


@dataclass(slots=True)
class Outcome:
    first_purchase_at: datetime | None = None
    bought: list[Bought] = field(default_factory=list)


def build_campaigns(calendar: Calendar) -> list[Campaign]:
    """One campaign a month, mid-month, alternating e-mail (WEB) and push (MOBILE_APP)."""
    campaigns: list[Campaign] = []
    names = {month: (code, name) for month, code, name in CAMPAIGNS}
    for day in range(DAYS):
        moment = calendar.start + timedelta(days=day)
        if moment.day != 15:
            continue
        code, name = names[moment.month]
        channel = Channel.WEB if moment.month % 2 else Channel.MOBILE_APP
        campaigns.append(Campaign(day, f"{moment.year}-{moment.month:02d}-{code}", name, channel))
    return campaigns


class Shop:
    """The catalogue arranged for fast weighted picks."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.calendar = world.calendar
        self.by_category: list[list[Sku]] = [[] for _ in CATEGORIES]
        for sku in world.catalogue:
            self.by_category[sku.category].append(sku)
        self.cum: list[list[float]] = []
        for skus in self.by_category:
            total, cum = 0.0, []
            for sku in skus:
                total += sku.popularity
                cum.append(total)
            self.cum.append(cum)
        self.campaigns = build_campaigns(world.calendar)
        self.city_stores: dict[int, list[int]] = {}
        for position, store in enumerate(world.stores):
            self.city_stores.setdefault(store.city, []).append(position)

    def pick_sku(self, rng: random.Random, category: int) -> Sku:
        cum = self.cum[category]
        return self.by_category[category][bisect.bisect(cum, rng.random() * cum[-1])]


class Life:
    """One person's two years."""

    def __init__(self, shop: Shop, person: Person, batch: Batch) -> None:
        self.shop = shop
        self.calendar = shop.calendar
        self.person = person
        self.batch = batch
        self.rng = random.Random(f"{shop.world.seed}:{person.index}")  # noqa: S311 (demo data, not secrets)
        self.outcome = Outcome()
        self.taste: dict[int, list[float]] = {}  # month → cumulative category weights
        self.channels = list(itertools.accumulate(person.mix))
        self.reviewer = person.duplicate_of is None and (person.blogger or self.rng.random() < 0.18)

    def category(self, month: int) -> int:
        cum = self.taste.get(month)
        if cum is None:
            weights = (
                liking * CATEGORIES[position].season[month - 1]
                for position, liking in enumerate(self.person.favourites)
            )
            cum = self.taste[month] = list(itertools.accumulate(weights))
        return bisect.bisect(cum, self.rng.random() * cum[-1])

    def channel(self) -> Channel:
        return CHANNELS[bisect.bisect(self.channels, self.rng.random() * self.channels[-1])]

    def moment(self, day: int, *, in_store: bool) -> datetime:
        when = self.calendar.at(day, self.rng, in_store=in_store)
        if when <= self.person.registered_at:
            when = self.person.registered_at + timedelta(minutes=self.rng.uniform(1, 90))
        return when

    def event(
        self, kind: EventType, channel: Channel, when: datetime, **values: Any
    ) -> dict[str, Any]:
        row = dict(_EMPTY_EVENT)
        event_id = uuid.uuid4()
        row.update(
            id=event_id,
            customer_id=self.person.customer_id,
            type=kind.value,
            channel=channel.value,
            occurred_at=when,
            recorded_at=when + timedelta(seconds=self.rng.uniform(1, 120)),
            idempotency_key=None,  # generated history, not a client's retryable request
            **values,
        )
        self.batch.counts[kind.value] += 1
        return row

    def live(self) -> Outcome:
        person, rng, calendar = self.person, self.rng, self.calendar
        first, end = person.registered_day, person.churn_day or DAYS
        expected = person.rate / 30 * calendar.mass(first, end)
        count = poisson(rng, expected)
        days = sorted(calendar.sample_day(rng, first, end) for _ in range(count))
        if person.rate > 0 and person.channel is Channel.POS and person.duplicate_of is None:
            days.insert(0, first)  # signed up at the till, while paying
        if person.one_timer and days:
            days = days[:1]
            end = min(end, days[0] + 1)
        for day in days:
            self.purchase(day, at_signup=day == first and person.channel is Channel.POS)
        self.visits(first, end)
        self.contacts(first, end)
        self.campaigns(first, end)
        return self.outcome

    def purchase(
        self, day: int, *, at_signup: bool = False, channel: Channel | None = None
    ) -> None:
        person, rng, shop = self.person, self.rng, self.shop
        channel = channel or self.channel()
        in_store = channel is Channel.POS
        store = None
        if in_store:
            draw = rng.random()
            city = shop.city_stores[shop.world.stores[person.home_store].city]
            position = (
                person.home_store
                if draw < 0.8
                else rng.choice(city)
                if draw < 0.95
                else rng.randrange(len(shop.world.stores))
            )
            store = shop.world.stores[position]
        when = (
            person.registered_at + timedelta(minutes=rng.uniform(1, 10))
            if at_signup
            else self.moment(day, in_store=in_store)
        )
        month = when.month
        promo = 0.8 if month == 11 and when.day >= 22 else 0.9 if rng.random() < 0.12 else 1.0
        lines: dict[str, tuple[Sku, int, int]] = {}
        size = 1
        while size < 8 and rng.random() < 0.45:
            size += 1
        for _ in range(size):
            sku = shop.pick_sku(rng, self.category(month))
            cheap = sku.price_minor < 100_000
            draw = rng.random()
            quantity = (
                (1 if draw < 0.75 else 2 if draw < 0.9 else 3 if draw < 0.96 else 4)
                if cheap
                else (1 if draw < 0.95 else 2)
            )
            price = int(sku.price_minor * promo) // 100 * 100
            held = lines.get(sku.sku)
            lines[sku.sku] = (sku, quantity + (held[1] if held else 0), price)
        event = self.event(
            EventType.PURCHASE,
            channel,
            when,
            store_id=store.id if store else None,
            external_ref=f"{'R' if in_store else 'W'}{rng.randrange(10**9):09d}",
            currency=CURRENCY,
            amount_minor=sum(quantity * price for _, quantity, price in lines.values()),
        )
        self.batch.events.append(event)
        self.add_lines(event["id"], list(lines.values()))
        if self.outcome.first_purchase_at is None or when < self.outcome.first_purchase_at:
            self.outcome.first_purchase_at = when
        returned = self.maybe_return(event, day, list(lines.values()))
        if self.reviewer:
            self.outcome.bought.extend(
                Bought(sku.sku, when, sku.sku in returned) for sku, _, _ in lines.values()
            )

    def add_lines(self, event_id: uuid.UUID, lines: list[tuple[Sku, int, int]]) -> None:
        for number, (sku, quantity, price) in enumerate(lines, start=1):
            self.batch.lines.append(
                {
                    "id": uuid.uuid4(),
                    "event_id": event_id,
                    "line_no": number,
                    "sku": sku.sku,
                    "category": CATEGORIES[sku.category].slug,
                    "quantity": quantity,
                    "unit_price_minor": price,
                    "total_minor": quantity * price,
                }
            )

    def maybe_return(
        self, purchase: dict[str, Any], day: int, lines: list[tuple[Sku, int, int]]
    ) -> set[str]:
        """Part of a purchase comes back within three weeks; never more than was bought."""
        rng = self.rng
        chance = 1.3 * max(CATEGORIES[sku.category].return_rate for sku, _, _ in lines)
        back_day = day + rng.randint(1, 21)
        if rng.random() >= chance or back_day >= DAYS:
            return set()
        picked = [line for line in lines if rng.random() < 0.6] or [rng.choice(lines)]
        back = [(sku, rng.randint(1, quantity), price) for sku, quantity, price in picked]
        channel = Channel(purchase["channel"])
        when = self.moment(back_day, in_store=channel is Channel.POS)
        event = self.event(
            EventType.RETURN,
            channel,
            max(when, purchase["occurred_at"] + timedelta(hours=1)),
            store_id=purchase["store_id"],
            currency=CURRENCY,
            amount_minor=sum(quantity * price for _, quantity, price in back),
            purchase_id=purchase["id"],
        )
        self.batch.returns.append(event)
        self.add_lines(event["id"], back)
        return {sku.sku for sku, _, _ in back}

    def visits(self, first: int, end: int) -> None:
        """Store check-ins and app or site sessions that ended without a purchase."""
        person, rng, calendar = self.person, self.rng, self.calendar
        count = poisson(rng, (0.4 * person.rate + 0.05) / 30 * calendar.mass(first, end))
        for _ in range(count):
            day = calendar.sample_day(rng, first, end)
            channel = self.channel()
            store = self.shop.world.stores[person.home_store] if channel is Channel.POS else None
            when = self.moment(day, in_store=channel is Channel.POS)
            self.batch.events.append(
                self.event(EventType.VISIT, channel, when, store_id=store.id if store else None)
            )

    def contacts(self, first: int, end: int) -> None:
        person, rng = self.person, self.rng
        calls: list[tuple[int, str, int | None]] = []
        for _ in range(poisson(rng, 0.05 / 30 * (end - first))):
            topic = weighted(rng, CONTACT_TOPICS)
            low = topic == "complaint"
            score = rng.choices((1, 2, 3, 4, 5), (30, 30, 20, 15, 5) if low else (5, 7, 15, 33, 40))
            calls.append(
                (rng.randrange(first, end), topic, score[0] if rng.random() < 0.85 else None)
            )
        if person.churn_day is not None and rng.random() < 0.35:
            day = max(first, person.churn_day - rng.randint(1, 30))
            calls.append((day, rng.choice(CHURN_TOPICS), rng.choice((1, 1, 2))))
        for day, topic, satisfaction in calls:
            when = self.moment(day, in_store=False)
            self.batch.events.append(
                self.event(
                    EventType.CONTACT,
                    Channel.CONTACT_CENTER,
                    when,
                    topic=topic,
                    satisfaction=satisfaction,
                )
            )

    def campaigns(self, first: int, end: int) -> None:
        """Opens, clicks and conversions (deliveries are not recorded as responses)."""
        person, rng = self.person, self.rng
        unsubscribed: set[Channel] = set()
        keen = min(2.0, 0.6 + person.rate)
        for campaign in self.shop.campaigns:
            if not first <= campaign.day < end or campaign.channel in unsubscribed:
                continue
            if rng.random() >= 0.45:
                continue  # not in this campaign's audience
            if rng.random() < 0.01:
                unsubscribed.add(campaign.channel)
                self.respond(campaign, campaign.day, CampaignAction.UNSUBSCRIBED)
                continue
            opened = 0.25 if campaign.channel is Channel.WEB else 0.18
            if rng.random() >= opened * keen:
                continue
            day = campaign.day + int(rng.expovariate(1.0))
            if day >= end:
                continue
            self.respond(campaign, day, CampaignAction.OPENED)
            if rng.random() >= 0.35:
                continue
            self.respond(campaign, day, CampaignAction.CLICKED)
            if rng.random() >= 0.3:
                continue
            self.respond(campaign, day, CampaignAction.CONVERTED)
            self.purchase(day, channel=campaign.channel)

    def respond(self, campaign: Campaign, day: int, action: CampaignAction) -> None:
        when = self.moment(day, in_store=False)
        self.batch.events.append(
            self.event(
                EventType.CAMPAIGN_RESPONSE,
                campaign.channel,
                when,
                campaign=campaign.code,
                campaign_channel=campaign.channel.value,
                action=action.value,
            )
        )


@dataclass(frozen=True, slots=True)
class ReviewSeed:
    id: uuid.UUID
    author: int
    sku: str
    rating: int
    text: str | None
    created_at: datetime


def build_reviews(world: World, bought: dict[int, list[Bought]]) -> list[ReviewSeed]:
    """Reviews of things people bought; a returned item tends to get a low rating."""
    reviews: list[ReviewSeed] = []
    limit = world.calendar.anchor - timedelta(hours=1)
    for index in sorted(bought):
        person = world.people[index]
        rng = random.Random(f"{world.seed}:review:{index}")  # noqa: S311 (demo data, not secrets)
        seen: dict[str, Bought] = {}
        for item in bought[index]:
            seen.setdefault(item.sku, item)
        wanted = rng.randint(3, 8) if person.blogger else 1 + int(rng.expovariate(1.5))
        for item in rng.sample(list(seen.values()), min(wanted, len(seen))):
            created = item.at + timedelta(days=rng.uniform(2, 30))
            if created > limit:
                continue
            if item.returned:
                rating = rng.choices((1, 2, 3), (50, 35, 15))[0]
            else:
                rating = rng.choices((5, 4, 3, 2, 1), (48, 30, 11, 6, 5))[0]
            text = None
            if rng.random() < 0.85:
                texts = REVIEWS_RU if rng.random() < 0.8 else REVIEWS_EN
                text = rng.choice(texts[rating])
            reviews.append(ReviewSeed(uuid.uuid4(), index, item.sku, rating, text, created))
    return reviews


def build_votes(world: World, reviews: list[ReviewSeed]) -> list[dict[str, Any]]:
    """Helpful votes from other people; bloggers' reviews draw a crowd."""
    people, anchor = world.people, world.calendar.anchor
    votes: list[dict[str, Any]] = []
    for review in reviews:
        rng = random.Random(f"{world.seed}:votes:{review.author}:{review.sku}")  # noqa: S311 (demo data, not secrets)
        author = people[review.author]
        crowd = int(rng.paretovariate(1.4)) - 1 + (1 if review.text else 0)
        if author.blogger:
            crowd = crowd * 6 + rng.randint(5, 20)
        crowd = min(crowd, 80, len(people) - 2)
        voters: set[int] = set()
        for voter in rng.sample(range(len(people)), min(len(people), crowd * 2 + 2)):
            candidate = people[voter]
            same = (candidate.duplicate_of or voter) == (author.duplicate_of or review.author)
            if same or len(voters) >= crowd:
                continue
            when = max(review.created_at, candidate.registered_at) + timedelta(
                days=rng.expovariate(1 / 7)
            )
            if when >= anchor:
                continue
            voters.add(voter)
            helpful = rng.random() < (0.8 if review.text else 0.55)
            votes.append(
                {
                    "id": uuid.uuid4(),
                    "review_id": review.id,
                    "voter_id": candidate.customer_id,
                    "helpful": helpful,
                    "created_at": when,
                }
            )
    return votes


def referral_rows(
    world: World, first_purchase: dict[int, datetime]
) -> tuple[list[dict[str, Any]], Counter[str]]:
    """Statuses follow the referee: registered, and converted by their first purchase."""
    rows: list[dict[str, Any]] = []
    counts: Counter[str] = Counter()
    for seed in world.referrals:
        row = _referral(world, seed, first_purchase)
        counts[row["status"]] += 1
        rows.append(row)
    return rows, counts


def _referral(
    world: World, seed: ReferralSeed, first_purchase: dict[int, datetime]
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": uuid.uuid4(),
        "referrer_id": world.people[seed.referrer].customer_id,
        "referee_id": None,
        "code": seed.code,
        "status": ReferralStatus.INVITED.value,
        "created_at": seed.created_at,
        "registered_at": None,
        "converted_at": None,
    }
    if seed.referee is not None:
        referee = world.people[seed.referee]
        bought = first_purchase.get(seed.referee)
        row.update(
            referee_id=referee.customer_id,
            status=(ReferralStatus.CONVERTED if bought else ReferralStatus.REGISTERED).value,
            registered_at=referee.registered_at,
            converted_at=bought,
        )
    return row
