# ruff: noqa: RUF001, RUF002  (Russian letters are meant to be Cyrillic)
"""Matching forms of Russian customer data, computed in memory only.

Every function here is pure: it turns one decrypted value into the form the matcher compares.
Names in Cyrillic and in Latin letters meet in one Latin "skeleton" (Иванов, Ivanov, Iwanow
→ ivanov; Юлия, Yuliya, Iulia → iulia), diminutives become the passport name (Саша →
Александр), ё is е, patronymics are split off, a surname keeps its stem and its gender form apart
(Иванов/Иванова share a stem and differ in gender: evidence of two people, not one), e-mail
addresses lose dots and +tags in the local part and typos in well-known domains, phones are
digits, addresses lose the words that are spelled many ways (ул., улица, д., кв.).

The results are personal data: they live in the matching job's memory and are never written
anywhere (blocking keys leave the job only as keyed hashes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from importlib import resources

import yaml
from rapidfuzz import fuzz, process

_CYR = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh", "з": "z",
    "и": "i", "й": "i", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r",
    "с": "s", "т": "t", "у": "u", "ф": "f", "х": "h", "ц": "c", "ч": "ch", "ш": "sh",
    "щ": "sh", "ъ": "", "ы": "i", "ь": "", "э": "e", "ю": "iu", "я": "ia",
}  # fmt: skip
# Latin spellings of one Russian sound, folded to the form _CYR produces (longest first).
_LATIN = (
    ("shch", "sh"), ("sch", "sh"), ("kh", "h"), ("tch", "ch"), ("ts", "c"), ("tz", "c"),
    ("yu", "iu"), ("ju", "iu"), ("ya", "ia"), ("ja", "ia"), ("yo", "e"), ("jo", "e"),
    ("ye", "e"), ("je", "e"), ("ks", "x"), ("w", "v"), ("y", "i"), ("j", "i"),
    ("ë", "e"), ("'", ""), ("`", ""),
)  # fmt: skip
_X = re.compile(r"x")
_NOT_WORD = re.compile(r"[^a-z0-9]+")
_DOUBLE = re.compile(r"(.)\1+")
_PATRONYMIC = re.compile(r"(ovich|evich|ich|ovna|evna|ichna|inichna)$")
_FEMALE = ("ova", "eva", "ina", "ia", "aia", "kaia", "skaia")
_MALE = ("ov", "ev", "in", "ii", "oi", "ski", "skii")

KNOWN_DOMAINS = (
    "gmail.com", "yandex.ru", "ya.ru", "mail.ru", "bk.ru", "list.ru", "inbox.ru", "rambler.ru",
    "outlook.com", "hotmail.com", "icloud.com", "yahoo.com", "internet.ru", "me.com",
)  # fmt: skip
_ADDRESS_NOISE = {
    "ul", "ulica", "d", "dom", "kv", "kvartira", "g", "gorod", "pr", "prospekt", "pr-t", "per",
    "pereulok", "korp", "k", "str", "stroenie", "obl", "oblast", "r-n", "raion", "pl",
    "ploshad", "shosse", "sh", "bul", "bulvar", "nab", "naberejnaia", "pos", "poselok",
}  # fmt: skip


def skeleton(text: str) -> str:
    """One Latin form for a word typed in Cyrillic or in any common Latin transliteration."""
    lowered = text.strip().lower()
    out = "".join(_CYR.get(ch, ch) for ch in lowered)
    for old, new in _LATIN:
        out = out.replace(old, new)
    out = _X.sub("ks", out)
    out = _NOT_WORD.sub("", out)
    return _DOUBLE.sub(r"\1", out)


@lru_cache(maxsize=1)
def name_variants() -> dict[str, str]:
    """Skeleton of every known variant → skeleton of its passport form (package data)."""
    raw = yaml.safe_load(resources.files(__package__).joinpath("names.yaml").read_text("utf-8"))
    table: dict[str, str] = {}
    for canonical, variants in raw.items():
        key = skeleton(canonical)
        table.setdefault(key, key)
        for variant in variants or ():
            table.setdefault(skeleton(variant), key)
    return table


def first_name_key(value: str | None) -> tuple[str | None, str | None]:
    """(given-name key, patronymic key): `Саша Петрович` → (aleksandr, petrovich)."""
    if not value:
        return None, None
    given: list[str] = []
    patronymic: str | None = None
    for token in value.replace("-", " ").split():
        word = skeleton(token)
        if not word:
            continue
        if given and _PATRONYMIC.search(word) and len(word) > 5:
            patronymic = word
        else:
            given.append(name_variants().get(word, word))
    return (given[0] if given else None), patronymic


@dataclass(frozen=True, slots=True)
class Surname:
    key: str | None  # the whole skeleton: ivanova
    stem: str | None  # without the gender ending: ivanov
    gender: str | None  # "F", "M" or None when the form does not tell


def surname_key(value: str | None) -> Surname:
    if not value:
        return Surname(None, None, None)
    key = skeleton(value.split()[0]) if value.split() else ""
    if not key:
        return Surname(None, None, None)
    for ending in ("skaia", "kaia", "aia"):
        if key.endswith(ending) and len(key) > len(ending) + 2:
            return Surname(key, key[: -len(ending)], "F")
    for ending in ("skii", "skoi", "oi", "ii"):
        if key.endswith(ending) and len(key) > len(ending) + 2:
            return Surname(key, key[: -len(ending)], "M")
    if key.endswith(("ova", "eva", "ina")) and len(key) > 5:
        return Surname(key, key[:-1], "F")
    if key.endswith(("ov", "ev", "in")) and len(key) > 4:
        return Surname(key, key, "M")
    return Surname(key, key, None)


def email_key(value: str | None) -> str | None:
    """`Ivan.Petrov+shop@gmial.com` → `ivanpetrov@gmail.com`."""
    if not value or "@" not in value:
        return None
    local, _, domain = value.strip().lower().rpartition("@")
    local = local.split("+", 1)[0].replace(".", "").replace("-", "")
    if domain not in KNOWN_DOMAINS:
        best = process.extractOne(domain, KNOWN_DOMAINS, scorer=fuzz.ratio, score_cutoff=80)
        if best is not None:
            domain = best[0]
    return f"{local}@{domain}" if local else None


def phone_key(value: str | None) -> str | None:
    """Digits of an E.164 number (already normalised by the identity layer)."""
    if not value:
        return None
    digits = "".join(ch for ch in value if ch.isdigit())
    return digits or None


def birth_key(value: str | date | None) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, date) else value[:10]


def address_key(value: str | None) -> str | None:
    if not value:
        return None
    words = [skeleton(word) for word in re.split(r"[\s,.;/]+", value)]
    kept = [word for word in words if word and word not in _ADDRESS_NOISE]
    return " ".join(kept) or None
