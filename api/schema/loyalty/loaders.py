"""Per-request DataLoaders of the loyalty engine: a page of customers asking for balances,
tiers or ledgers costs the same few statements as one customer."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader

from core.clock import utcnow
from loyalty import queries
from loyalty.ledger import Balance
from loyalty.models import Account, LedgerEntry
from loyalty.program import ActiveProgram, active_program
from loyalty.scheduled import Expiring

ACTIVE = "active"


@dataclass(frozen=True, slots=True)
class LedgerKey:
    owner: uuid.UUID
    first: int
    after: tuple[datetime, uuid.UUID] | None


@dataclass(frozen=True, slots=True)
class ExpiringKey:
    owner: uuid.UUID
    days: int


class LoyaltyLoaders:
    """Created with the request's `Loaders` (and renewed with them after each mutation)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.program = DataLoader[str, ActiveProgram | None](self._program)
        self.account = DataLoader[uuid.UUID, Account | None](self._accounts)
        self.balance = DataLoader[uuid.UUID, Balance](self._balances)
        self.qualifying = DataLoader[uuid.UUID, int](self._qualifying)
        self.expiring = DataLoader[ExpiringKey, Expiring | None](self._expiring)
        self.ledger = DataLoader[LedgerKey, list[LedgerEntry]](self._ledger)

    async def active_program(self) -> ActiveProgram | None:
        return await self.program.load(ACTIVE)

    async def _program(self, keys: list[str]) -> list[ActiveProgram | None]:
        found = await active_program(self.session)
        return [found for _ in keys]

    async def _accounts(self, ids: list[uuid.UUID]) -> list[Account | None]:
        found = await queries.accounts_for(self.session, ids)
        return [found.get(key) for key in ids]

    async def _balances(self, ids: list[uuid.UUID]) -> list[Balance]:
        found = await queries.balances_for(self.session, ids, utcnow())
        return [found[key] for key in ids]

    async def _qualifying(self, ids: list[uuid.UUID]) -> list[int]:
        program = await self.active_program()
        if program is None:
            return [0 for _ in ids]
        found = await queries.qualifying_for(self.session, ids, program.rules, utcnow())
        return [found[key] for key in ids]

    async def _expiring(self, keys: list[ExpiringKey]) -> list[Expiring | None]:
        by_days: dict[int, list[uuid.UUID]] = defaultdict(list)
        for key in keys:
            by_days[key.days].append(key.owner)
        now = utcnow()
        found: dict[ExpiringKey, Expiring] = {}
        for days, owners in by_days.items():
            rows = await queries.expiring_for(self.session, owners, at=now, days=days)
            found.update({ExpiringKey(owner, days): row for owner, row in rows.items()})
        return [found.get(key) for key in keys]

    async def _ledger(self, keys: list[LedgerKey]) -> list[list[LedgerEntry]]:
        groups: dict[tuple[int, tuple[datetime, uuid.UUID] | None], list[uuid.UUID]] = defaultdict(
            list
        )
        for key in keys:
            groups[(key.first, key.after)].append(key.owner)
        found: dict[LedgerKey, list[LedgerEntry]] = {}
        for (first, after), owners in groups.items():
            rows = await queries.ledger_for(self.session, owners, first=first, after=after)
            found.update({LedgerKey(owner, first, after): rows.get(owner, []) for owner in owners})
        return [found[key] for key in keys]
