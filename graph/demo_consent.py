"""The demo's consents: who agreed to what, when and how, written in bulk with the seed.

Most people joined the loyalty program with a participation consent where they registered; a
mix gave marketing consents per channel (SMS and calls mostly at the till or on the phone,
e-mail to those with an address, push to app users), some agreed to profiling, a few to
dissemination of their first name and reviews, and some later withdrew a marketing consent.

Rows are built the way `privacy.consent` builds them: a current `consent` row, a
`consent_change` per grant or withdrawal with its evidence (the IP address and user agent sealed
under the customer's data key, online channels only), and a hash-chained `audit_entry` for every
change, so `audit verify` holds and a consent audit export has something real to show.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel, col

from graph.demo_world import Person, World
from graph.enums import Channel
from privacy.audit import GENESIS, ciphertext_digest, entry_hash, pseudonym
from privacy.consent_documents import ensure_default_documents
from privacy.consent_models import Consent, ConsentChange
from privacy.keys import KeyProvider
from privacy.models import AuditEntry
from privacy.purposes import (
    CollectionChannel,
    CollectionMethod,
    ConsentStatus,
    DataCategory,
    MarketingChannel,
    Purpose,
)

NO_CHANNEL = "ANY"
ACTOR_BY_CHANNEL = {
    Channel.POS: "app:demo-pos",
    Channel.WEB: "app:demo-web",
    Channel.MOBILE_APP: "app:demo-app",
    Channel.CONTACT_CENTER: "staff:demo-contact-centre",
}
METHOD_BY_CHANNEL = {
    Channel.POS: CollectionMethod.SIGNATURE,
    Channel.WEB: CollectionMethod.CHECKBOX,
    Channel.MOBILE_APP: CollectionMethod.CHECKBOX,
    Channel.CONTACT_CENTER: CollectionMethod.RECORDED_CALL,
}
AGENTS = {
    Channel.WEB: (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 Version/17.4 Safari",
        "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    ),
    Channel.MOBILE_APP: ("HomeShop/5.3 (Android 14)", "HomeShop/5.3 (iOS 17.4)"),
}
# Share of people giving each consent at registration (marketing depends on the channel).
LOYALTY_SHARE = 0.93
PROFILING_SHARE = 0.6
DISSEMINATION_SHARE = 0.05
WITHDRAWAL_SHARE = 0.08  # of marketing consents, withdrawn later


class Sealer(Protocol):
    provider: KeyProvider

    def seal(
        self, owner: int, table: str, column: str, row_id: object, value: str | None
    ) -> bytes | None: ...


Insert = Callable[[type[SQLModel], list[dict[str, Any]]], Awaitable[None]]


@dataclass
class _Rows:
    consents: list[dict[str, Any]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)


def _marketing_channels(rng: random.Random, person: Person) -> list[MarketingChannel]:
    kinds = {identity.kind.value for identity in person.identities}
    chosen = []
    if "PHONE" in kinds and rng.random() < 0.55:
        chosen.append(MarketingChannel.SMS)
    if "EMAIL" in kinds and rng.random() < 0.45:
        chosen.append(MarketingChannel.EMAIL)
    if person.channel is Channel.MOBILE_APP and rng.random() < 0.6:
        chosen.append(MarketingChannel.PUSH)
    if "PHONE" in kinds and rng.random() < 0.08:
        chosen.append(MarketingChannel.CALL)
    return chosen


class _Builder:
    def __init__(self, sealer: Sealer, world: World, documents: dict[str, uuid.UUID]) -> None:
        self.sealer = sealer
        self.world = world
        self.documents = documents
        self.rng = random.Random(world.seed * 7919 + 152)  # noqa: S311 (demo data)
        self.rows = _Rows()

    def _ip(self) -> str:
        rng = self.rng
        first = rng.choice((46, 77, 95, 178, 188))
        return f"{first}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"

    def _change(
        self,
        person: Person,
        consent: dict[str, Any],
        status: ConsentStatus,
        at: datetime,
        how: tuple[Channel, CollectionMethod],
    ) -> None:
        change_id = uuid.uuid4()
        channel, method = how
        online = channel in AGENTS
        ip = self._ip() if online else None
        agent = self.rng.choice(AGENTS[channel]) if online else None
        seal = self.sealer.seal
        self.rows.changes.append(
            {
                "id": change_id,
                "consent_id": consent["id"],
                "subject_id": person.customer_id,
                "purpose": consent["purpose"],
                "channel": consent["channel"],
                "status": status.value,
                "document_id": consent["document_id"],
                "allowed_categories": consent["allowed_categories"],
                "occurred_at": at,
                "collected_channel": CollectionChannel(channel.value).value,
                "method": method.value,
                "actor": ACTOR_BY_CHANNEL[channel],
                "ip_ct": seal(person.index, "consent_change", "ip_ct", change_id, ip),
                "user_agent_ct": seal(
                    person.index, "consent_change", "user_agent_ct", change_id, agent
                ),
                "details": {},
            }
        )

    def _grant(
        self,
        person: Person,
        purpose: Purpose,
        channel: str,
        at: datetime,
        categories: list[str] | None = None,
    ) -> dict[str, Any]:
        consent = {
            "id": uuid.uuid4(),
            "subject_id": person.customer_id,
            "purpose": purpose.value,
            "channel": channel,
            "status": ConsentStatus.GRANTED.value,
            "document_id": self.documents[purpose.value],
            "allowed_categories": categories or [],
            "granted_at": at,
            "withdrawn_at": None,
            "updated_at": at,
        }
        self.rows.consents.append(consent)
        how = (person.channel, METHOD_BY_CHANNEL[person.channel])
        self._change(person, consent, ConsentStatus.GRANTED, at, how)
        return consent

    def person(self, person: Person) -> None:
        rng, anchor = self.rng, self.world.calendar.anchor
        at = person.registered_at + timedelta(seconds=rng.randrange(5, 120))
        if at >= anchor:
            return
        if rng.random() < LOYALTY_SHARE:
            self._grant(person, Purpose.LOYALTY_PARTICIPATION, NO_CHANNEL, at)
        if rng.random() < PROFILING_SHARE:
            self._grant(person, Purpose.PROFILING, NO_CHANNEL, at + timedelta(seconds=1))
        if rng.random() < DISSEMINATION_SHARE:
            categories = sorted([DataCategory.FIRST_NAME.value, DataCategory.REVIEWS.value])
            self._grant(person, Purpose.DISSEMINATION, NO_CHANNEL, at, categories)
        for channel in _marketing_channels(rng, person):
            consent = self._grant(person, Purpose.MARKETING, channel.value, at)
            if rng.random() < WITHDRAWAL_SHARE:
                self._withdraw(person, consent, at, anchor)

    def _withdraw(
        self, person: Person, consent: dict[str, Any], granted: datetime, anchor: datetime
    ) -> None:
        span = (anchor - granted).total_seconds()
        if span < 3600:
            return
        when = granted + timedelta(seconds=self.rng.uniform(3600, span))
        consent.update(status=ConsentStatus.WITHDRAWN.value, withdrawn_at=when, updated_at=when)
        how = self.rng.choice(
            [
                (Channel.CONTACT_CENTER, CollectionMethod.RECORDED_CALL),
                (Channel.MOBILE_APP, CollectionMethod.CHECKBOX),
                (Channel.WEB, CollectionMethod.EMAIL_LINK),
            ]
        )
        self._change(person, consent, ConsentStatus.WITHDRAWN, when, how)


async def _audit_rows(
    session: AsyncSession, provider: KeyProvider, changes: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """One chained audit entry per change, in the order the changes happened."""
    last = (
        await session.execute(
            select(col(AuditEntry.seq), col(AuditEntry.hash))
            .order_by(col(AuditEntry.seq).desc())
            .limit(1)
        )
    ).first()
    seq, prev = (last[0], last[1]) if last is not None else (0, GENESIS)
    entries = []
    for change in sorted(changes, key=lambda row: row["occurred_at"]):
        seq += 1
        subject = pseudonym(provider, change["subject_id"])
        action = f"consent.{change['status'].lower()}"
        details = {
            "occurred_at": change["occurred_at"].isoformat(),
            "consent_id": str(change["consent_id"]),
            "change_id": str(change["id"]),
            "purpose": change["purpose"],
            "channel": change["channel"],
            "document_id": str(change["document_id"]),
            "categories": change["allowed_categories"],
            "collected_channel": change["collected_channel"],
            "method": change["method"],
            "ip_digest": ciphertext_digest(change["ip_ct"]),
            "user_agent_digest": ciphertext_digest(change["user_agent_ct"]),
        }
        at, actor = change["occurred_at"], change["actor"]
        digest = entry_hash(
            seq=seq,
            at=at,
            actor=actor,
            action=action,
            subject=subject,
            details=details,
            prev_hash=prev,
        )
        entries.append(
            {
                "seq": seq,
                "at": at,
                "actor": actor,
                "action": action,
                "subject": subject,
                "details": details,
                "prev_hash": prev,
                "hash": digest,
            }
        )
        prev = digest
    return entries


async def seed_consents(session: AsyncSession, sealer: Sealer, world: World, insert: Insert) -> int:
    """Write the demo's consents (default documents first); returns the number of changes."""
    documents = {
        row.purpose: row.id
        for row in await ensure_default_documents(session)
        if row.language == "ru"
    }
    builder = _Builder(sealer, world, documents)
    for person in world.people:
        builder.person(person)
    rows = builder.rows
    await insert(Consent, rows.consents)
    await insert(ConsentChange, rows.changes)
    await insert(AuditEntry, await _audit_rows(session, sealer.provider, rows.changes))
    return len(rows.changes)
