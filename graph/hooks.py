"""What happened in the graph, told to the domains built on it.

The graph cannot import the domains above it (the loyalty engine, scoring), yet a purchase
recorded from any channel must earn points and a merge must move a balance. So the graph
publishes facts and those domains subscribe once at start-up (`loyalty.install()`, called by the
API and the CLI). Listeners run in the publisher's session and transaction: a purchase and the
points it earns commit together or not at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from graph.models import Customer, Event, Referral, Review
from privacy.fields import FieldCipher


@dataclass(frozen=True, slots=True)
class PurchaseRecorded:
    cipher: FieldCipher
    event: Event
    buyer: Customer
    first_purchase: bool


@dataclass(frozen=True, slots=True)
class ReturnRecorded:
    event: Event
    purchase: Event


@dataclass(frozen=True, slots=True)
class CustomerRegistered:
    customer: Customer


@dataclass(frozen=True, slots=True)
class ReviewSubmitted:
    review: Review


@dataclass(frozen=True, slots=True)
class ReferralConverted:
    referral: Referral
    purchase: Event


@dataclass(frozen=True, slots=True)
class CustomersMerged:
    survivor_id: uuid.UUID
    merged_id: uuid.UUID
    at: datetime


@dataclass(frozen=True, slots=True)
class CustomerUnmerged:
    survivor_id: uuid.UUID
    restored_id: uuid.UUID
    at: datetime


GraphFact = (
    PurchaseRecorded
    | ReturnRecorded
    | CustomerRegistered
    | ReviewSubmitted
    | ReferralConverted
    | CustomersMerged
    | CustomerUnmerged
)
Listener = Callable[[AsyncSession, GraphFact], Awaitable[None]]
Probe = Callable[[AsyncSession], Awaitable[bool]]

_listeners: list[Listener] = []
_probes: dict[Listener, Probe] = {}
_interests: dict[Listener, tuple[type, ...]] = {}


def subscribe(
    listener: Listener,
    *,
    active: Probe | None = None,
    facts: tuple[type, ...] | None = None,
) -> None:
    """Add a listener once (subscribing the same function again changes nothing). `active`
    tells whether it would do anything now (the loyalty engine: only with a program), `facts`
    which fact types it acts on, so the bulk path can skip publishing facts nobody acts on."""
    if listener not in _listeners:
        _listeners.append(listener)
    if active is not None:
        _probes[listener] = active
    if facts is not None:
        _interests[listener] = facts


async def anyone_listening(session: AsyncSession, *facts: type) -> bool:
    """Whether publishing a fact of one of these types (any type when none is given) now
    could change anything."""
    for listener in list(_listeners):
        interest = _interests.get(listener)
        if facts and interest is not None and not set(facts) & set(interest):
            continue
        probe = _probes.get(listener)
        if probe is None or await probe(session):
            return True
    return False


def unsubscribe(listener: Listener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)
    _probes.pop(listener, None)
    _interests.pop(listener, None)


async def publish(session: AsyncSession, fact: GraphFact) -> None:
    for listener in list(_listeners):
        await listener(session, fact)
