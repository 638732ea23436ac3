"""Given-steps shared by the loyalty tests: a program, a member, purchases and returns, all
through the real service functions in real transactions."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.db import transaction
from graph.customers import register_customer
from graph.enums import Channel
from graph.events import CustomerRef, record_purchase, record_return
from graph.lines import LineInput
from loyalty.definition import ProgramDefinition, parse_definition
from loyalty.ledger import Balance, balance_of
from loyalty.program import load_program, read_program_file
from loyalty.verify import verify_ledger
from privacy.fields import FieldCipher
from privacy.keys import KeyProvider

DEMO_PROGRAM = Path(__file__).resolve().parents[2] / "loyalty" / "programs" / "demo.yaml"


def program(**overrides: Any) -> ProgramDefinition:
    """A small program: 1 point per 1.00, 10 days pending, 100 days expiry, no bonuses."""
    data: dict[str, Any] = {
        "code": "test",
        "name": "Test",
        "currency": "RUB",
        "pending_days": 10,
        "earn": {"points": 1, "per_minor": 100},
        "expiry": {"policy": "days", "days": 100},
        "redemption": {"point_value_minor": 100, "max_share_percent": 50, "min_balance": 0},
        "tiers": {"levels": [{"code": "base", "name": "Base", "threshold": 0}]},
    }
    for key, value in overrides.items():
        data[key] = value
    return parse_definition(data)


class Loyalty:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], provider: KeyProvider) -> None:
        self.sessions = sessions
        self.provider = provider
        self._keys = 0

    def key(self) -> str:
        self._keys += 1
        return f"test-key-{uuid.uuid4().hex[:8]}-{self._keys}"

    async def load(self, definition: ProgramDefinition | None = None) -> None:
        async with transaction(self.sessions) as session:
            await load_program(session, definition or read_program_file(DEMO_PROGRAM), actor="test")

    async def member(self, phone: str, *, at: datetime) -> uuid.UUID:
        async with transaction(self.sessions) as session:
            result = await register_customer(
                session,
                FieldCipher(session, self.provider),
                channel=Channel.POS,
                phone=phone,
                phone_verified=True,
                now=at,
            )
            return result.customer.id

    async def buy(
        self,
        customer_id: uuid.UUID,
        amount_minor: int,
        *,
        at: datetime,
        channel: Channel = Channel.POS,
        category: str = "grocery",
        quantity: int = 1,
    ) -> uuid.UUID:
        async with transaction(self.sessions) as session:
            recorded = await record_purchase(
                session,
                FieldCipher(session, self.provider),
                customer=CustomerRef(customer_id=customer_id),
                channel=channel,
                lines=[
                    LineInput(
                        sku="SKU-1",
                        quantity=quantity,
                        category=category,
                        unit_price_minor=amount_minor // quantity,
                    )
                ],
                idempotency_key=self.key(),
                currency="RUB",
                occurred_at=at,
                now=at,
            )
            return recorded.event.id

    async def give_back(self, purchase_id: uuid.UUID, quantity: int, *, at: datetime) -> uuid.UUID:
        async with transaction(self.sessions) as session:
            recorded = await record_return(
                session,
                FieldCipher(session, self.provider),
                purchase_id=purchase_id,
                channel=Channel.POS,
                lines=[LineInput(sku="SKU-1", quantity=quantity)],
                idempotency_key=self.key(),
                occurred_at=at,
                now=at,
            )
            return recorded.event.id

    async def balance(self, customer_id: uuid.UUID, at: datetime) -> Balance:
        async with self.sessions() as session:
            return await balance_of(session, customer_id, at)

    async def assert_verified(self) -> None:
        async with self.sessions() as session:
            report = await verify_ledger(session)
        assert report.ok, report.breaches


LEDGER_TABLES = (
    "loyalty_account",
    "loyalty_entry",
    "loyalty_lot",
    "loyalty_allocation",
    "loyalty_reservation",
    "loyalty_tier_change",
    "event",
    "event_line",
)


async def ledger_rows(session: AsyncSession) -> dict[str, list[tuple[object, ...]]]:
    """Every row of the loyalty tables and of the events that drive them, in a stable order:
    compare two snapshots to show that an operation changed nothing."""
    rows: dict[str, list[tuple[object, ...]]] = {}
    for table in LEDGER_TABLES:
        result = await session.execute(text(f"SELECT * FROM {table}"))
        rows[table] = sorted((tuple(row) for row in result.all()), key=repr)
    return rows
