# ruff: noqa: RUF001, RUF002  (Russian names are meant to be Cyrillic)
"""Identity resolution quality: precision, recall and F1 of the automatic merges and of the
automatic merges plus the review queue, on two labelled sets. Prints JSON.

    .venv/bin/python benchmarks/identity_quality.py                 # 3,000 demo people
    .venv/bin/python benchmarks/identity_quality.py --people 20000

Set 1, "demo": `graph.demo_world.World` (seeded): about 5% of people registered twice through
another channel (same phone unverified, an e-mail with a domain typo, the card in an app; name
variants, ё/е, Latin spelling), plus the hard negatives of `graph.demo_duplicates` (family
sharing a phone or card, namesakes, one surname in two genders, twins).

Set 2, "corrupted": its own generator and corruption model, not the demo's: 10% of people get a
second record with, each at random, character typos and transpositions in names, another Latin
transliteration (Yuliya/Iuliia/Julija), a diminutive, first name and surname swapped, day and
month of birth swapped, missing birth date/phone/e-mail, one or two phone digits wrong, e-mail
dots/+tags and domain typos, an abbreviated address. Hard negatives as in set 1.

Both sets go through the production rule (`features.matching_record`) and model
(`model.new_linker`, `model.train`, `model.predict`), with the default thresholds of
`service.Thresholds`. Pairs are compared as pairs (a duplicate pair found or not).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
from datetime import UTC, date, datetime, timedelta
from typing import Any

from graph.demo_data import FEMALE_NAMES, MALE_NAMES, SURNAMES, translit
from graph.demo_world import World
from graph.enums import IdentityKind
from graph.resolution import model
from graph.resolution.features import Record, matching_record
from graph.resolution.service import Thresholds

LATIN = {  # other transliteration schemes people use
    "ю": ("yu", "iu", "ju"), "я": ("ya", "ia", "ja"), "х": ("kh", "h", "ch"),
    "ц": ("ts", "c", "tz"), "й": ("y", "i", "j"), "ё": ("e", "yo", "jo"), "щ": ("shch", "sch"),
    "ж": ("zh", "j"), "ы": ("y", "i"), "ь": ("", "'"), "е": ("e", "ye"),
}  # fmt: skip
DIMINUTIVE = {"Александр": "Саша", "Алексей": "Лёша", "Мария": "Маша", "Дмитрий": "Дима",
              "Екатерина": "Катя", "Наталья": "Наташа", "Сергей": "Серёжа", "Анна": "Аня",
              "Михаил": "Миша", "Ольга": "Оля", "Иван": "Ваня", "Елена": "Лена"}  # fmt: skip
DOMAINS = ("gmail.com", "yandex.ru", "mail.ru", "bk.ru")
DOMAIN_TYPOS = {"gmail.com": "gmal.com", "yandex.ru": "yanex.ru", "mail.ru": "mail.r",
                "bk.ru": "bk.rru"}  # fmt: skip
STREETS = ("Ленина", "Мира", "Садовая", "Школьная", "Победы", "Гагарина")
CITIES = ("Москва", "Казань", "Самара", "Пермь", "Омск")


def _latin(rng: random.Random, word: str) -> str:
    out = []
    for ch in word.lower():
        options = LATIN.get(ch)
        out.append(rng.choice(options) if options else translit(ch))
    return "".join(out).capitalize()


def _typo(rng: random.Random, word: str) -> str:
    if len(word) < 4:
        return word
    i = rng.randrange(1, len(word) - 1)
    kind = rng.random()
    if kind < 0.4:
        return word[:i] + word[i + 1 :]
    if kind < 0.7:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    return word[:i] + rng.choice("аеиоуклмнр") + word[i + 1 :]


def _record(uid: Any, person: dict[str, Any]) -> Record:
    return matching_record(
        uid,
        first_name=person["first"],
        last_name=person["last"],
        birth_date=person["dob"],
        address=person["address"],
        phones=[person["phone"]] if person["phone"] else [],
        emails=[person["email"]] if person["email"] else [],
        cards=[person["card"]] if person.get("card") else [],
    )


def _base(rng: random.Random, i: int) -> dict[str, Any]:
    female = rng.random() < 0.55
    first = rng.choice(FEMALE_NAMES if female else MALE_NAMES)
    last = rng.choice(SURNAMES) + ("а" if female else "")
    born = date(1950, 1, 1) + timedelta(days=rng.randrange(20000))
    local = f"{translit(first)}.{translit(last)}{rng.randrange(100)}"
    return {
        "female": female,
        "first": first,
        "last": last,
        "dob": born.isoformat(),
        "phone": f"+79{rng.randrange(10**9):09d}",
        "email": f"{local}@{rng.choice(DOMAINS)}",
        "address": f"г. {rng.choice(CITIES)}, ул. {rng.choice(STREETS)}, д. {rng.randint(1, 99)}, "
        f"кв. {rng.randint(1, 300)}",
        "card": None,
    }


def _corrupt(rng: random.Random, p: dict[str, Any]) -> dict[str, Any]:
    d = dict(p)
    if rng.random() < 0.3:
        d["first"] = _typo(rng, d["first"])
    if rng.random() < 0.3:
        d["last"] = _typo(rng, d["last"])
    if rng.random() < 0.25:
        d["first"], d["last"] = _latin(rng, d["first"]), _latin(rng, d["last"])
    if rng.random() < 0.15:
        d["first"] = DIMINUTIVE.get(d["first"], d["first"])
    if rng.random() < 0.05:
        d["first"], d["last"] = d["last"], d["first"]
    if rng.random() < 0.1 and d["dob"]:
        y, m, day = d["dob"].split("-")
        if int(day) <= 12:
            d["dob"] = f"{y}-{day}-{m}"
    for field, chance in (("dob", 0.2), ("phone", 0.3), ("email", 0.3), ("address", 0.4)):
        if rng.random() < chance:
            d[field] = None
    if d["phone"] and rng.random() < 0.2:
        digits = list(d["phone"])
        for _ in range(rng.choice((1, 2))):
            j = rng.randrange(3, len(digits))
            digits[j] = str(rng.randrange(10))
        d["phone"] = "".join(digits)
    if d["email"] and rng.random() < 0.4:
        local, domain = d["email"].split("@")
        choice = rng.random()
        if choice < 0.4:
            d["email"] = f"{local.replace('.', '')}@{domain}"
        elif choice < 0.7:
            d["email"] = f"{local}+shop@{domain}"
        else:
            d["email"] = f"{local}@{DOMAIN_TYPOS[domain]}"
    if d["address"] and rng.random() < 0.5:
        d["address"] = d["address"].replace("г. ", "").replace("ул. ", "улица ").replace("д. ", "")
    return d


def corrupted_set(
    n: int, seed: int
) -> tuple[list[Record], set[tuple[str, str]], set[tuple[str, str]]]:
    rng = random.Random(seed)
    people = [_base(rng, i) for i in range(n)]
    truth: set[tuple[str, str]] = set()
    hard: set[tuple[str, str]] = set()
    extra: list[dict[str, Any]] = []
    for i, p in enumerate(people):
        if rng.random() < 0.1:
            extra.append(_corrupt(rng, p))
            truth.add(tuple(sorted((str(i), str(n + len(extra) - 1)))))  # type: ignore[arg-type]
        elif rng.random() < 0.02:  # a relative at the same address and phone
            other = dict(p)
            female = not p["female"]
            names = FEMALE_NAMES if female else MALE_NAMES
            other["first"] = rng.choice([x for x in names if x != p["first"]])
            other["last"] = (
                p["last"] + "а"
                if female and not p["last"].endswith("а")
                else (p["last"][:-1] if not female and p["last"].endswith("а") else p["last"])
            )
            other["email"] = None
            other["dob"] = (
                date.fromisoformat(p["dob"]) + timedelta(days=rng.randint(400, 9000))
            ).isoformat()
            extra.append(other)
            hard.add(tuple(sorted((str(i), str(n + len(extra) - 1)))))  # type: ignore[arg-type]
    everyone = people + extra
    return [_record(i, p) for i, p in enumerate(everyone)], truth, hard


def demo_set(n: int, seed: int) -> tuple[list[Record], set[tuple[str, str]], set[tuple[str, str]]]:
    world = World(seed, n, datetime(2025, 6, 1, tzinfo=UTC))
    records = []
    for p in world.people:
        ids = {k: [i.value for i in p.identities if i.kind == k] for k in IdentityKind}
        records.append(
            matching_record(
                p.index,
                first_name=p.first_name,
                last_name=p.last_name,
                birth_date=p.birth_date.isoformat() if p.birth_date else None,
                address=p.address,
                phones=ids[IdentityKind.PHONE],
                emails=ids[IdentityKind.EMAIL],
                cards=ids[IdentityKind.LOYALTY_CARD],
            )
        )
    truth = {
        tuple(sorted((str(p.index), str(p.duplicate_of))))
        for p in world.people
        if p.duplicate_of is not None
    }
    hard = {tuple(sorted((str(a), str(b)))) for a, b, _ in world.hard_negatives}
    return records, truth, hard  # type: ignore[return-value]


def _scores(found: set[tuple[str, str]], truth: set[tuple[str, str]]) -> dict[str, float]:
    tp = len(found & truth)
    precision = tp / len(found) if found else 1.0
    recall = tp / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "pairs": len(found),
        "true_pairs": tp,
        "precision": round(precision, 5),
        "recall": round(recall, 5),
        "f1": round(f1, 5),
    }


def evaluate(name: str, records: list[Record], truth: Any, hard: Any) -> dict[str, Any]:
    thresholds = Thresholds()
    linker = model.new_linker(records)
    model.train(linker, max_pairs=3e5)
    pairs = model.predict(linker, threshold=thresholds.review)
    automatic = {(p.left, p.right) for p in pairs if p.probability >= thresholds.automatic}
    queued = {(p.left, p.right) for p in pairs}
    return {
        "set": name,
        "records": len(records),
        "duplicate_pairs": len(truth),
        "hard_negative_pairs": len(hard),
        "automatic": _scores(automatic, truth),
        "automatic_plus_queue": _scores(queued, truth),
        "hard_negatives_automatic": len(automatic & hard),
        "hard_negatives_queued": len(queued & hard),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    results = [
        evaluate("demo", *demo_set(args.people, args.seed)),
        evaluate("corrupted", *corrupted_set(args.people, args.seed + 1)),
    ]
    print(
        json.dumps(
            {
                "thresholds": {"automatic": Thresholds().automatic, "review": Thresholds().review},
                "results": results,
            },
            indent=2,
        )
    )
    for r in results:
        print(
            f"{r['set']}: automatic P={r['automatic']['precision']} R={r['automatic']['recall']}; "
            f"automatic+queue F1={r['automatic_plus_queue']['f1']}",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
