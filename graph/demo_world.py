"""The demo retailer's world: catalogue, stores, and the people who shop there.

Pure and deterministic: every choice comes from the `random.Random` passed in, so the same seed
gives the same shape. Ids are fresh uuid4s and never influence a choice.
"""

from __future__ import annotations

import bisect
import math
import random
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from graph.demo_calendar import DAYS, Calendar, weighted
from graph.demo_data import (
    ADDRESS,
    BLOGGER_SUFFIXES,
    CATEGORIES,
    CITIES,
    EMAIL_DOMAINS,
    EMAIL_TYPOS,
    FEMALE_NAMES,
    MALE_NAMES,
    MOBILE_PREFIXES,
    NAME_VARIANTS,
    RETAILER,
    STREETS,
    SURNAMES,
    translit,
)
from graph.demo_duplicates import add_hard_negatives
from graph.enums import Channel, IdentityKind, SocialPlatform

DUPLICATE_SHARE = 0.05
CHANNEL_MIX = {  # where a customer buys, by registration channel: POS, WEB, MOBILE_APP
    Channel.POS: (0.8, 0.1, 0.1),
    Channel.WEB: (0.25, 0.6, 0.15),
    Channel.MOBILE_APP: (0.3, 0.1, 0.6),
    Channel.CONTACT_CENTER: (0.6, 0.3, 0.1),
}
PLATFORMS = (
    (SocialPlatform.VK, 45),
    (SocialPlatform.TELEGRAM, 25),
    (SocialPlatform.INSTAGRAM, 12),
    (SocialPlatform.TIKTOK, 12),
    (SocialPlatform.YOUTUBE, 6),
)


@dataclass(frozen=True, slots=True)
class Sku:
    sku: str
    category: int
    price_minor: int
    popularity: float


@dataclass(frozen=True, slots=True)
class StoreSeed:
    id: uuid.UUID
    code: str
    name: str
    city: int


@dataclass(frozen=True, slots=True)
class IdentitySeed:
    kind: IdentityKind
    value: str
    verified: bool
    source_system: str | None = None


@dataclass(frozen=True, slots=True)
class SocialSeed:
    platform: SocialPlatform
    handle: str
    followers: int
    linked_day: int


@dataclass(slots=True)
class Person:
    """One Customer row. Duplicates are people too, pointing at who they really are."""

    index: int
    customer_id: uuid.UUID
    female: bool
    first_name: str
    last_name: str
    birth_date: date | None
    address: str | None
    city: int
    home_store: int
    channel: Channel
    registered_at: datetime
    registered_day: int
    identities: list[IdentitySeed]
    rate: float  # purchases per 30 average days
    churn_day: int | None
    one_timer: bool
    mix: tuple[float, float, float]
    favourites: tuple[float, ...]
    blogger: bool = False
    sharer: bool = False
    duplicate_of: int | None = None
    duplicate_kind: str | None = None
    socials: list[SocialSeed] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ReferralSeed:
    referrer: int
    referee: int | None
    code: str
    created_at: datetime


def build_catalogue(rng: random.Random) -> list[Sku]:
    skus: list[Sku] = []
    for position, category in enumerate(CATEGORIES):
        low, high = math.log(category.min_rub), math.log(category.max_rub)
        for number in range(1, category.skus + 1):
            rub = math.exp(rng.uniform(low, high))
            rub = max(category.min_rub, round(rub / 10) * 10 - 10) if rub > 100 else round(rub)
            skus.append(
                Sku(
                    sku=f"{category.prefix}-{number:04d}",
                    category=position,
                    price_minor=int(rub) * 100,
                    popularity=1 / number**0.8,
                )
            )
    return skus


def build_stores() -> list[StoreSeed]:
    stores: list[StoreSeed] = []
    for position, city in enumerate(CITIES):
        for number, mall in enumerate(city.stores, start=1):
            stores.append(
                StoreSeed(
                    id=uuid.uuid4(),
                    code=f"{city.code}-{number:03d}",
                    name=f"{RETAILER}, {mall}",
                    city=position,
                )
            )
    return stores


class _Unique:
    """Draws identifier values until an unused one comes up (verified values are unique)."""

    def __init__(self) -> None:
        self.phones: set[str] = set()
        self.emails: set[str] = set()
        self.cards: set[str] = set()
        self.handles: set[tuple[SocialPlatform, str]] = set()
        self.codes: set[str] = set()

    def phone(self, rng: random.Random) -> str:
        while True:
            value = f"+7{rng.choice(MOBILE_PREFIXES)}{rng.randrange(10**7):07d}"
            if value not in self.phones:
                self.phones.add(value)
                return value

    def email(self, rng: random.Random, first: str, last: str, born: int) -> str:
        domain = weighted(rng, EMAIL_DOMAINS)
        local = rng.choice(
            (f"{first}.{last}", f"{first}{last}{born % 100:02d}", f"{first[0]}{last}",
             f"{last}.{first}", f"{first}_{born}")
        )  # fmt: skip
        value = f"{local}@{domain}"
        while value in self.emails:
            value = f"{local}{rng.randrange(1, 1000)}@{domain}"
        self.emails.add(value)
        return value

    def card(self, rng: random.Random) -> str:
        while True:
            value = f"27{rng.randrange(10**11):011d}"
            if value not in self.cards:
                self.cards.add(value)
                return value

    def handle(self, rng: random.Random, platform: SocialPlatform, base: str) -> str:
        value = base
        while (platform, value) in self.handles:
            value = f"{base}{rng.randrange(1, 10_000)}"
        self.handles.add((platform, value))
        return value

    def code(self, rng: random.Random) -> str:
        alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
        while True:
            value = "".join(rng.choice(alphabet) for _ in range(8))
            if value not in self.codes:
                self.codes.add(value)
                return value


class World:
    """Everything decided before a single event happens."""

    def __init__(self, seed: int, people: int, anchor: datetime) -> None:
        self.seed = seed
        self.rng = random.Random(seed)  # noqa: S311 (demo data, not secrets)
        self.calendar = Calendar(anchor)
        self.catalogue = build_catalogue(self.rng)
        self.stores = build_stores()
        self.unique = _Unique()
        self.people: list[Person] = []
        self.referrals: list[ReferralSeed] = []
        self._build_people(people)
        self._build_influencers()
        self._build_referrals()
        self._build_duplicates()
        self.hard_negatives: list[tuple[int, int, str]] = []
        add_hard_negatives(self)  # look-alike different people (graph.demo_duplicates)

    @property
    def originals(self) -> int:
        return sum(1 for person in self.people if person.duplicate_of is None)

    def _identities(self, person: Person, born: int) -> None:
        rng, unique = self.rng, self.unique
        first, last = translit(person.first_name), translit(person.last_name)
        online = person.channel in (Channel.WEB, Channel.MOBILE_APP)
        has_phone = not (person.channel is Channel.WEB and rng.random() < 0.1)
        if has_phone:
            person.identities.append(IdentitySeed(IdentityKind.PHONE, unique.phone(rng), True))
        if not has_phone or rng.random() < (0.85 if online else 0.5):
            email = unique.email(rng, first, last, born)
            person.identities.append(IdentitySeed(IdentityKind.EMAIL, email, rng.random() < 0.9))
        if rng.random() < (0.9 if person.channel is Channel.POS else 0.3):
            person.identities.append(
                IdentitySeed(IdentityKind.LOYALTY_CARD, unique.card(rng), True)
            )
        if rng.random() < 0.06:
            legacy = f"{rng.randrange(10**7):07d}"
            person.identities.append(
                IdentitySeed(IdentityKind.EXTERNAL_ID, legacy, True, "legacy_crm")
            )
        if not any(item.verified for item in person.identities):
            person.identities.append(
                IdentitySeed(IdentityKind.LOYALTY_CARD, unique.card(rng), True)
            )

    def _build_people(self, count: int) -> None:
        rng, calendar = self.rng, self.calendar
        moments: list[tuple[int, datetime]] = []
        for _ in range(count):
            early = rng.random() < 0.25  # the base moved over when the programme launched
            day = rng.randrange(0, 30) if early else calendar.sample_day(rng, 0, DAYS - 2)
            moments.append((day, calendar.at(day, rng, in_store=True)))
        moments.sort()
        channels = [Channel.POS, Channel.WEB, Channel.MOBILE_APP, Channel.CONTACT_CENTER]
        city_weights = [city.weight for city in CITIES]
        for index, (day, registered_at) in enumerate(moments):
            female = rng.random() < 0.58
            first = rng.choice(FEMALE_NAMES if female else MALE_NAMES)
            last = rng.choice(SURNAMES) + ("а" if female else "")  # noqa: RUF001
            age = rng.triangular(18, 78, 34)
            birth = calendar.anchor.date() - timedelta(days=int(age * 365.25))
            city = rng.choices(range(len(CITIES)), city_weights)[0]
            stores = [pos for pos, store in enumerate(self.stores) if store.city == city]
            channel = rng.choices(channels, [45, 20, 30, 5])[0]
            online = channel in (Channel.WEB, Channel.MOBILE_APP)
            address = None
            if rng.random() < (0.8 if online else 0.35):
                address = ADDRESS.format(
                    city=CITIES[city].name,
                    street=rng.choice(STREETS),
                    house=rng.randint(1, 120),
                    flat=rng.randint(1, 300),
                )
            churn_day: int | None = None
            if rng.random() < 0.3:
                churn_day = day + 14 + int(rng.expovariate(1 / 200))
                churn_day = churn_day if churn_day < DAYS else None
            person = Person(
                index=index,
                customer_id=uuid.uuid4(),
                female=female,
                first_name=first,
                last_name=last,
                birth_date=birth if rng.random() < 0.85 else None,
                address=address,
                city=city,
                home_store=rng.choice(stores),
                channel=channel,
                registered_at=registered_at,
                registered_day=day,
                identities=[],
                rate=0.0 if rng.random() < 0.06 else rng.gammavariate(1.3, 0.6 / 1.3),
                churn_day=churn_day,
                one_timer=rng.random() < 0.12,
                mix=CHANNEL_MIX[channel],
                favourites=tuple(rng.gammavariate(0.6, 1.0) + 0.02 for _ in CATEGORIES),
                sharer=rng.random() < 0.1,
            )
            self._identities(person, birth.year)
            self.people.append(person)

    def _build_influencers(self) -> None:
        rng, unique = self.rng, self.unique
        count = len(self.people)
        settled = [p.index for p in self.people if p.registered_day < DAYS - 90] or [0]
        bloggers = set(rng.sample(settled, min(len(settled), max(2, round(count * 0.004)))))
        for person in self.people:
            person.blogger = person.index in bloggers
            if not person.blogger and rng.random() >= 0.15:
                continue
            first, last = translit(person.first_name), translit(person.last_name)
            for _ in range(2 if rng.random() < 0.2 or person.blogger else 1):
                platform = SocialPlatform(weighted(rng, PLATFORMS))
                if person.blogger:
                    base = f"{last}_{rng.choice(BLOGGER_SUFFIXES)}"
                    followers = min(3_000_000, int(8_000 * rng.paretovariate(1.1)))
                else:
                    base = rng.choice((f"{first}_{last}", f"{first}{last[:3]}", f"{last}.{first}"))
                    followers = int(rng.lognormvariate(math.log(120), 1.1))
                linked = rng.randint(person.registered_day, DAYS - 1)
                handle = unique.handle(rng, platform, base)
                person.socials.append(SocialSeed(platform, handle, followers, linked))

    def _build_referrals(self) -> None:
        rng, calendar = self.rng, self.calendar
        cum = [0.0]
        for person in self.people:
            cum.append(cum[-1] + (40.0 if person.blogger else 4.0 if person.sharer else 0.3))
        referrers: set[int] = set()
        for person in self.people[1:]:
            chance = 0.16 if person.channel in (Channel.WEB, Channel.MOBILE_APP) else 0.08
            if rng.random() >= chance:
                continue
            pick = bisect.bisect_right(cum, rng.uniform(0, cum[person.index])) - 1
            referrer = self.people[min(pick, person.index - 1)]
            earliest = max(referrer.registered_at, person.registered_at - timedelta(days=14))
            spread = (person.registered_at - earliest).total_seconds()
            created = earliest + timedelta(seconds=rng.uniform(0, max(spread, 0)))
            self.referrals.append(
                ReferralSeed(referrer.index, person.index, self.unique.code(rng), created)
            )
            referrers.add(referrer.index)
        for person in self.people:  # invitations nobody has used (yet)
            if person.blogger:
                unused = rng.randint(5, 25)
            elif person.index in referrers:
                unused = rng.randint(0, 3)
            elif rng.random() < 0.03:
                unused = 1
            else:
                continue
            for _ in range(unused):
                day = rng.randint(person.registered_day, DAYS - 1)
                created = max(person.registered_at, calendar.at(day, rng, in_store=False))
                self.referrals.append(
                    ReferralSeed(person.index, None, self.unique.code(rng), created)
                )

    def _build_duplicates(self) -> None:
        """About 5% of people register a second time through another channel."""
        rng, unique = self.rng, self.unique
        candidates = [p for p in self.people if p.registered_day < DAYS - 30]
        chosen = rng.sample(
            candidates, min(len(candidates), round(len(self.people) * DUPLICATE_SHARE))
        )
        chosen.sort(key=lambda person: person.index)
        for original in chosen:
            kinds: list[tuple[str, int]] = []
            held = {item.kind: item for item in original.identities}
            if IdentityKind.PHONE in held:
                kinds.append(("phone_again", 45))
            if IdentityKind.EMAIL in held:
                kinds.append(("email_typo", 30))
            if IdentityKind.LOYALTY_CARD in held:
                kinds.append(("card_online", 25))
            if not kinds:
                continue
            kind = weighted(rng, tuple(kinds))
            day = min(DAYS - 2, original.registered_day + rng.randint(7, 300))
            first, last = original.first_name, original.last_name
            if rng.random() < 0.3:
                first = NAME_VARIANTS.get(first, first)
            if rng.random() < 0.5:
                last = last.replace("ё", "е")  # noqa: RUF001
            identities: list[IdentitySeed] = []
            latin = (translit(first), translit(last))
            if kind == "phone_again":
                channel = Channel.MOBILE_APP if original.channel is Channel.POS else Channel.POS
                identities.append(
                    IdentitySeed(IdentityKind.PHONE, held[IdentityKind.PHONE].value, False)
                )
                if rng.random() < 0.5:
                    email = unique.email(
                        rng, *latin, original.birth_date.year if original.birth_date else 1990
                    )
                    identities.append(IdentitySeed(IdentityKind.EMAIL, email, True))
            elif kind == "email_typo":
                channel = Channel.WEB
                local, domain = held[IdentityKind.EMAIL].value.split("@")
                typo = f"{local}@{rng.choice(EMAIL_TYPOS[domain])}"
                if typo in unique.emails:
                    continue
                unique.emails.add(typo)
                identities.append(IdentitySeed(IdentityKind.EMAIL, typo, False))
                if rng.random() < 0.3:  # typed the name in Latin letters
                    first, last = latin[0].capitalize(), latin[1].capitalize()
            else:
                channel = rng.choice((Channel.WEB, Channel.MOBILE_APP))
                card = held[IdentityKind.LOYALTY_CARD].value
                identities.append(IdentitySeed(IdentityKind.LOYALTY_CARD, card, False))
                email = unique.email(
                    rng, *latin, original.birth_date.year if original.birth_date else 1990
                )
                identities.append(IdentitySeed(IdentityKind.EMAIL, email, True))
            self.people.append(
                Person(
                    index=len(self.people),
                    customer_id=uuid.uuid4(),
                    female=original.female,
                    first_name=first,
                    last_name=last,
                    birth_date=original.birth_date if rng.random() < 0.3 else None,
                    address=None,
                    city=original.city,
                    home_store=original.home_store,
                    channel=channel,
                    registered_at=self.calendar.at(day, rng, in_store=channel is Channel.POS),
                    registered_day=day,
                    identities=identities,
                    rate=original.rate * 0.3,
                    churn_day=None,
                    one_timer=False,
                    mix=CHANNEL_MIX[channel],
                    favourites=original.favourites,
                    duplicate_of=original.index,
                    duplicate_kind=kind,
                )
            )
