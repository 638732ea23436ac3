"""Raw history as columns: what the feature function reads, loaded once from the database.

Everything is keyed by an owner code (`cid`, a position in `History.owners`): the customer a
row belongs to after merges (a merged customer's rows count as its survivor's). Times are float
days since the Unix epoch, so that windows are plain comparisons and the same rows give the same
floats on every path. Rows come in a fixed order (time, then id), so a sum over one customer's
rows adds the same numbers in the same order whether the whole base or one customer was loaded.

`load_history(owners=...)` loads only what the features of those owners read: their own rows,
votes on their reviews, and the purchases of the people they referred (two levels down).

Every load also says, per owner, whether their data may be processed for profiling now
(`profiled`, and `vote_profiled` for the voters on the loaded reviews): a referee or a voter
who may not be profiled counts in nobody's features or influence (`joined_referrals`,
`counted_votes`), so nobody's score aggregates the data of someone who refused profiling or
had their processing restricted.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Executable, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from core.clock import as_utc
from graph.enums import CampaignAction, Channel, CustomerStatus, EventType
from graph.models import (
    Customer,
    Event,
    FollowerCount,
    Referral,
    Review,
    ReviewVote,
    SocialProfile,
)
from loyalty.models import LedgerEntry, TierChange
from loyalty.program import active_program
from privacy.enforcement import allowed_subjects
from privacy.purposes import Purpose

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
SECONDS_PER_DAY = 86_400.0

EVENT_TYPES = tuple(EventType)
CHANNELS = tuple(Channel)
ACTIONS = tuple(CampaignAction)
STATUSES = tuple(CustomerStatus)
OWNER = func.coalesce(col(Customer.survivor_id), col(Customer.id))


def days(moment: datetime) -> float:
    """An instant as float days since the Unix epoch (UTC)."""
    return as_utc(moment).timestamp() / SECONDS_PER_DAY


def voter_key(owner: uuid.UUID) -> int:
    """A stable 63-bit key of a person (both halves of the id folded together), to count
    distinct voters without loading them."""
    value = owner.int
    return ((value >> 64) ^ value) & (2**63 - 1)


def _nan_days(moment: datetime | None) -> float:
    return np.nan if moment is None else days(moment)


@dataclass(slots=True)
class History:
    """Column arrays of one load. `owners[cid]` is the customer id behind a code."""

    owners: list[uuid.UUID]
    until: float
    currency: str
    # customers (one row per owner)
    registered_at: Floats
    status: Ints  # index into STATUSES
    profiled: Bools  # may be processed for profiling now (consent, no restriction)
    # events
    ev_cid: Ints
    ev_type: Ints  # index into EVENT_TYPES
    ev_channel: Ints  # index into CHANNELS
    ev_at: Floats
    ev_amount: Floats  # major units of the program currency; NaN without an amount
    ev_satisfaction: Floats  # 1-5, NaN when not given
    ev_action: Ints  # index into ACTIONS, -1 for other events
    # reviews and the votes on them
    rv_cid: Ints
    rv_at: Floats
    vote_review: Ints  # index into the review arrays
    vote_voter: Ints  # `voter_key` of the voter (after merges), loaded or not
    vote_at: Floats
    vote_helpful: Bools
    vote_profiled: Bools  # the voter may be processed for profiling now
    # referrals (referee -1: an invitation nobody used, or a referee not loaded)
    ref_referrer: Ints
    ref_referee: Ints
    ref_created_at: Floats
    ref_registered_at: Floats
    ref_converted_at: Floats
    # social profiles, and their follower counts as observed over time
    so_cid: Ints
    so_linked_at: Floats
    fc_profile: Ints  # index into the profile arrays
    fc_followers: Floats
    fc_at: Floats
    # loyalty ledger entries and tier changes
    le_cid: Ints
    le_kind: npt.NDArray[np.str_]
    le_points: Floats
    le_at: Floats
    tc_cid: Ints
    tc_rank: Floats  # position of the tier on the program's ladder (0 = lowest)
    tc_at: Floats
    index: dict[uuid.UUID, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.index:
            self.index = {owner: position for position, owner in enumerate(self.owners)}

    @property
    def size(self) -> int:
        return len(self.owners)


def counted_votes(history: History, cutoff: float) -> Bools:
    """Votes that count for a review's author at `cutoff` (float days): cast before it, on a
    review written before it, by someone who may be profiled."""
    h = history
    result: Bools = (h.vote_at < cutoff) & (h.rv_at[h.vote_review] < cutoff) & h.vote_profiled
    return result


def joined_referrals(history: History, cutoff: float) -> Bools:
    """Referrals that count for the referrer at `cutoff` (float days): the referee had joined
    before it, is not the referrer, and may be profiled. Features and influence both use it."""
    h = history
    referee = h.ref_referee >= 0
    profiled = np.zeros(h.ref_referee.size, dtype=np.bool_)
    profiled[referee] = h.profiled[h.ref_referee[referee]]
    result: Bools = (
        referee
        & (h.ref_referrer >= 0)
        & (h.ref_registered_at < cutoff)
        & (h.ref_referrer != h.ref_referee)
        & profiled
    )
    return result


def _ints(values: Iterable[int]) -> Ints:
    return np.fromiter(values, dtype=np.int64)


def _floats(values: Iterable[float]) -> Floats:
    return np.fromiter(values, dtype=np.float64)


class _Loader:
    def __init__(
        self,
        session: AsyncSession,
        until: datetime,
        members: dict[uuid.UUID, uuid.UUID],
        *,
        restricted: bool,
    ) -> None:
        self.session = session
        self.until = as_utc(until)
        self.members = members  # customer id -> owner id, for every loaded customer
        self.restricted = restricted  # only `members` rows (one customer and their referees)
        self.index: dict[uuid.UUID, int] = {}  # owner id -> code, once customers are loaded

    async def rows(self, query: Executable) -> list[Any]:
        return list((await self.session.execute(query)).all())

    def code(self, customer_id: uuid.UUID | None) -> int:
        """The owner code of a customer id; -1 when it is not a loaded owner's."""
        owner = None if customer_id is None else self.members.get(customer_id)
        return -1 if owner is None else self.index.get(owner, -1)

    async def owned(self, model: Any, owner: Any, at: Any, *columns: Any) -> list[Any]:
        """`owner, *columns` of the rows of `model` before `until` that belong to a loaded
        owner, in time order (then id, so the order is the same on every path)."""
        wanted = [owner.in_(list(self.members))] if self.restricted else []
        rows = await self.rows(
            select(owner, *columns).where(at < self.until, *wanted).order_by(at, col(model.id))
        )
        return [row for row in rows if self.code(row[0]) >= 0]


async def _members(
    session: AsyncSession, owners: Sequence[uuid.UUID] | None
) -> dict[uuid.UUID, uuid.UUID]:
    query = select(col(Customer.id), OWNER)
    if owners is not None:
        query = query.where(
            or_(col(Customer.id).in_(owners), col(Customer.survivor_id).in_(owners))
        )
    return {row_id: owner for row_id, owner in (await session.execute(query)).all()}


async def _referees(
    session: AsyncSession, members: dict[uuid.UUID, uuid.UUID], until: datetime
) -> dict[uuid.UUID, uuid.UUID]:
    """Members of the owners referred by the given members (one level)."""
    referee = select(col(Referral.referee_id)).where(
        col(Referral.referrer_id).in_(list(members)),
        col(Referral.referee_id).is_not(None),
        col(Referral.created_at) < until,
    )
    owners = [
        owner
        for (owner,) in (
            await session.execute(select(OWNER).where(col(Customer.id).in_(referee)).distinct())
        ).all()
    ]
    return await _members(session, owners) if owners else {}


async def load_history(
    session: AsyncSession,
    *,
    until: datetime,
    currency: str,
    owners: Sequence[uuid.UUID] | None = None,
) -> History:
    """Everything recorded before `until`, for every customer or for `owners` (and the people
    they referred, two levels down, whose spend their features count)."""
    until = as_utc(until)
    members = await _members(session, owners)
    if owners is not None:
        first = await _referees(session, members, until)
        second = await _referees(session, first, until) if first else {}
        members = {**second, **first, **members}
    loader = _Loader(session, until, members, restricted=owners is not None)
    customers = await _customers(loader)
    loader.index = {owner: position for position, owner in enumerate(customers[0])}
    allowed = await allowed_subjects(session, customers[0], purpose=Purpose.PROFILING)
    return await _assemble(loader, customers, allowed, currency)


async def _customers(loader: _Loader) -> tuple[list[uuid.UUID], Floats, Ints]:
    """Owners with their first registration over every customer merged into them (a merge
    does not make anyone newer) and their status, in registration order: the same history
    gives the same row order, so training on it gives the same model."""
    wanted = [col(Customer.id).in_(list(loader.members))] if loader.restricted else []
    rows = await loader.rows(
        select(OWNER, func.min(col(Customer.registered_at))).where(*wanted).group_by(OWNER)
    )
    first = dict(rows)
    statuses = dict(
        await loader.rows(
            select(col(Customer.id), col(Customer.status)).where(
                col(Customer.survivor_id).is_(None), col(Customer.id).in_(list(first))
            )
            if loader.restricted
            else select(col(Customer.id), col(Customer.status)).where(
                col(Customer.survivor_id).is_(None)
            )
        )
    )
    ordered = sorted(statuses, key=lambda owner: (first[owner], str(owner)))
    registered = _floats(days(first[owner]) for owner in ordered)
    status = _ints(STATUSES.index(CustomerStatus(statuses[owner])) for owner in ordered)
    return ordered, registered, status


async def _assemble(
    loader: _Loader,
    customers: tuple[list[uuid.UUID], Floats, Ints],
    allowed: set[uuid.UUID],
    currency: str,
) -> History:
    owners, registered, status = customers
    code, until = loader.code, loader.until
    events = await loader.owned(
        Event,
        col(Event.customer_id),
        col(Event.occurred_at),
        col(Event.type),
        col(Event.channel),
        col(Event.occurred_at),
        col(Event.currency),
        col(Event.amount_minor),
        col(Event.satisfaction),
        col(Event.action),
    )
    action_codes = {action.value: position for position, action in enumerate(ACTIONS)}
    type_codes = {kind.value: position for position, kind in enumerate(EVENT_TYPES)}
    channel_codes = {channel.value: position for position, channel in enumerate(CHANNELS)}
    reviews = await loader.owned(
        Review, col(Review.customer_id), col(Review.created_at), col(Review.id),
        col(Review.created_at),
    )  # fmt: skip
    review_index = {row[1]: position for position, row in enumerate(reviews)}
    # Votes by anyone on the loaded reviews; the voter as a key of their survivor.
    votes = await loader.rows(
        select(
            col(ReviewVote.review_id),
            OWNER,
            col(ReviewVote.created_at),
            col(ReviewVote.helpful),
        )
        .join(Customer, col(Customer.id) == col(ReviewVote.voter_id))
        .where(
            col(ReviewVote.created_at) < until,
            *([col(ReviewVote.review_id).in_(list(review_index))] if loader.restricted else []),
        )
        .order_by(col(ReviewVote.created_at), col(ReviewVote.id))
    )
    votes = [row for row in votes if row[0] in review_index]
    # Voters outside a partial load are asked about too: the answer must not depend on it.
    strangers = {row[1] for row in votes} - set(loader.index)
    if strangers:
        allowed = allowed | await allowed_subjects(
            loader.session, strangers, purpose=Purpose.PROFILING
        )
    referrals = await loader.owned(
        Referral, col(Referral.referrer_id), col(Referral.created_at), col(Referral.referee_id),
        col(Referral.created_at), col(Referral.registered_at), col(Referral.converted_at),
    )  # fmt: skip
    social = await loader.owned(
        SocialProfile, col(SocialProfile.customer_id), col(SocialProfile.linked_at),
        col(SocialProfile.id), col(SocialProfile.linked_at),
    )  # fmt: skip
    profile_index = {row[1]: position for position, row in enumerate(social)}
    profile_owner = col(SocialProfile.customer_id)
    counts = await loader.rows(
        select(
            col(FollowerCount.profile_id),
            col(FollowerCount.followers),
            col(FollowerCount.observed_at),
        )
        .join(SocialProfile, col(SocialProfile.id) == col(FollowerCount.profile_id))
        .where(
            col(FollowerCount.observed_at) < until,
            *([profile_owner.in_(list(loader.members))] if loader.restricted else []),
        )
        .order_by(col(FollowerCount.observed_at), col(FollowerCount.id))
    )
    counts = [row for row in counts if row[0] in profile_index]
    entries = await loader.owned(
        LedgerEntry, col(LedgerEntry.customer_id), col(LedgerEntry.occurred_at),
        col(LedgerEntry.kind), col(LedgerEntry.points), col(LedgerEntry.occurred_at),
    )  # fmt: skip
    tiers = await loader.owned(
        TierChange, col(TierChange.customer_id), col(TierChange.occurred_at),
        col(TierChange.to_tier), col(TierChange.occurred_at),
    )  # fmt: skip
    ladder = await _tier_ladder(loader.session)

    def amount(row: Any) -> float:
        return np.nan if row[5] is None or row[4] != currency else row[5] / 100.0

    return History(
        owners=owners,
        until=days(until),
        currency=currency,
        registered_at=registered,
        status=status,
        profiled=np.fromiter((owner in allowed for owner in owners), dtype=np.bool_),
        ev_cid=_ints(code(row[0]) for row in events),
        ev_type=_ints(type_codes[row[1]] for row in events),
        ev_channel=_ints(channel_codes.get(row[2], -1) for row in events),
        ev_at=_floats(days(row[3]) for row in events),
        ev_amount=_floats(amount(row) for row in events),
        ev_satisfaction=_floats(np.nan if row[6] is None else float(row[6]) for row in events),
        ev_action=_ints(action_codes.get(row[7], -1) if row[7] else -1 for row in events),
        rv_cid=_ints(code(row[0]) for row in reviews),
        rv_at=_floats(days(row[2]) for row in reviews),
        vote_review=_ints(review_index[row[0]] for row in votes),
        vote_voter=_ints(voter_key(row[1]) for row in votes),
        vote_at=_floats(days(row[2]) for row in votes),
        vote_helpful=np.fromiter((bool(row[3]) for row in votes), dtype=np.bool_),
        vote_profiled=np.fromiter((row[1] in allowed for row in votes), dtype=np.bool_),
        ref_referrer=_ints(code(row[0]) for row in referrals),
        ref_referee=_ints(code(row[1]) for row in referrals),
        ref_created_at=_floats(days(row[2]) for row in referrals),
        ref_registered_at=_floats(_nan_days(row[3]) for row in referrals),
        ref_converted_at=_floats(_nan_days(row[4]) for row in referrals),
        so_cid=_ints(code(row[0]) for row in social),
        so_linked_at=_floats(days(row[2]) for row in social),
        fc_profile=_ints(profile_index[row[0]] for row in counts),
        fc_followers=_floats(float(row[1]) for row in counts),
        fc_at=_floats(days(row[2]) for row in counts),
        le_cid=_ints(code(row[0]) for row in entries),
        le_kind=np.array([row[1] for row in entries], dtype=np.str_),
        le_points=_floats(float(row[2]) for row in entries),
        le_at=_floats(days(row[3]) for row in entries),
        tc_cid=_ints(code(row[0]) for row in tiers),
        tc_rank=_floats(float(ladder.get(row[1], np.nan)) for row in tiers),
        tc_at=_floats(days(row[2]) for row in tiers),
        index=dict(loader.index),
    )


async def _tier_ladder(session: AsyncSession) -> dict[str, int]:
    """Tier code -> rank on the active program's ladder (lowest threshold first)."""
    program = await active_program(session)
    if program is None:
        return {}
    return {level.code: rank for rank, level in enumerate(program.rules.tiers.levels)}
