# ruff: noqa: RUF001  (Russian names are meant to be Cyrillic)
"""Hard negatives of the demo: different people who look alike, so that a matcher that merges
them is caught. (The demo's true duplicates, people registered twice through another channel,
are drawn in `demo_world`.)

- a family sharing a phone (the second holds it unverified) or a loyalty card, at one address;
- namesakes: the same first name and surname, another birth date, another city;
- the same surname in two genders (brother and sister, Евгений and Евгения), one address;
- twins: one surname, one birth date, one address, different first names.

Drawn with their own random stream, so the rest of the demo is what it was without them.
`World.hard_negatives` lists the pairs as (index, index, kind).
"""

from __future__ import annotations

import dataclasses
import random
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING

from graph.demo_data import FEMALE_NAMES, MALE_NAMES
from graph.enums import IdentityKind

if TYPE_CHECKING:
    from graph.demo_world import IdentitySeed, Person, World

SHARE = 0.006  # of the people, per kind of hard negative
TWO_GENDERS = (("Евгений", "Евгения"), ("Александр", "Александра"), ("Валерий", "Валерия"))
KINDS = ("family_phone", "family_card", "namesake", "two_genders", "twins")


def _female_form(surname: str) -> str:
    return surname if surname.endswith("а") else surname + "а"


def _male_form(surname: str) -> str:
    return surname[:-1] if surname.endswith(("ова", "ева", "ина")) else surname


def add_hard_negatives(world: World) -> None:
    """Append look-alike people to the world and record who they look like."""
    from graph.demo_world import IdentitySeed

    rng = random.Random(world.seed * 1_000_003 + 15)  # noqa: S311 (demo data, not secrets)
    pairs: list[tuple[int, int, str]] = []
    twice = {p.duplicate_of for p in world.people if p.duplicate_of is not None}
    # People registered twice stay out: their true pair must keep looking alike.
    originals = [p for p in world.people if p.duplicate_of is None and p.index not in twice]
    count = max(1, round(len(originals) * SHARE))

    def card() -> IdentitySeed:
        return IdentitySeed(IdentityKind.LOYALTY_CARD, world.unique.card(rng), True)

    def relative(
        base: Person,
        *,
        female: bool,
        first: str,
        identities: list[IdentitySeed],
        birth_shift: int | None,
        surname: str | None = None,
    ) -> Person:
        last = surname or (_female_form(base.last_name) if female else _male_form(base.last_name))
        birth = None
        if base.birth_date is not None and birth_shift is not None:
            birth = base.birth_date + timedelta(days=birth_shift)
        person = dataclasses.replace(
            base,
            index=len(world.people),
            customer_id=uuid.uuid4(),
            female=female,
            first_name=first,
            last_name=last,
            birth_date=birth,
            identities=identities,
            socials=[],
            blogger=False,
            sharer=False,
            duplicate_of=None,
            duplicate_kind=None,
        )
        world.people.append(person)
        return person

    def held(person: Person, kind: IdentityKind) -> IdentitySeed | None:
        return next((i for i in person.identities if i.kind == kind and i.verified), None)

    for kind in KINDS:
        chosen = rng.sample(originals, min(len(originals), count))
        for base in chosen:
            female = not base.female
            names = FEMALE_NAMES if female else MALE_NAMES
            first = rng.choice([n for n in names if n != base.first_name])
            if kind == "family_phone":
                phone = held(base, IdentityKind.PHONE)
                if phone is None:
                    continue
                ids = [IdentitySeed(IdentityKind.PHONE, phone.value, False), card()]
                other = relative(
                    base,
                    female=female,
                    first=first,
                    identities=ids,
                    birth_shift=rng.choice((-1, 1)) * rng.randint(700, 9000),
                )
            elif kind == "family_card":
                shared = held(base, IdentityKind.LOYALTY_CARD)
                if shared is None:
                    continue
                ids = [IdentitySeed(IdentityKind.LOYALTY_CARD, shared.value, False)]
                ids.append(IdentitySeed(IdentityKind.PHONE, world.unique.phone(rng), True))
                other = relative(
                    base,
                    female=female,
                    first=first,
                    identities=ids,
                    birth_shift=rng.choice((-1, 1)) * rng.randint(700, 9000),
                )
            elif kind == "namesake":
                ids = [IdentitySeed(IdentityKind.PHONE, world.unique.phone(rng), True), card()]
                other = relative(
                    base,
                    female=base.female,
                    first=base.first_name,
                    identities=ids,
                    birth_shift=rng.randint(400, 12000),
                    surname=base.last_name,
                )
                other.address = None
            elif kind == "two_genders":
                male, woman = rng.choice(TWO_GENDERS)
                base.first_name = woman if base.female else male
                sibling = male if base.female else woman
                ids = [IdentitySeed(IdentityKind.PHONE, world.unique.phone(rng), True), card()]
                other = relative(
                    base,
                    female=female,
                    first=sibling,
                    identities=ids,
                    birth_shift=rng.randint(300, 3000),
                )
            else:  # twins
                twin_names = FEMALE_NAMES if base.female else MALE_NAMES
                twin = rng.choice([n for n in twin_names if n != base.first_name])
                ids = [IdentitySeed(IdentityKind.PHONE, world.unique.phone(rng), True), card()]
                other = relative(
                    base,
                    female=base.female,
                    first=twin,
                    identities=ids,
                    birth_shift=0,
                    surname=base.last_name,
                )
            pairs.append((base.index, other.index, kind))
    world.hard_negatives = pairs
