"""A generated `scoring.history.History` of any size, straight into column arrays (no database),
for the scoring throughput benchmark.

Each customer has a purchase rate (gamma), a dropout day (exponential), purchases over two
years and a quarter before `end`, some returns, visits, contact-centre contacts with
satisfaction, campaign opens, ledger entries for the points of each purchase, and a few
reviews, votes, referrals and social profiles. The shape is believable enough for the trees to
split and the features to do real work; nothing here is used to judge model quality.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import numpy as np

from graph.enums import CampaignAction, Channel, CustomerStatus, EventType
from scoring.history import ACTIONS, CHANNELS, EVENT_TYPES, STATUSES, History, days

SPAN_DAYS = 820.0  # two years of history plus a 90-day horizon after a cutoff


def synthetic_history(customers: int, *, end: datetime, seed: int = 0) -> History:
    rng = np.random.default_rng(seed)
    n = customers
    stop = days(end)
    start = stop - SPAN_DAYS
    registered = start + rng.uniform(0, SPAN_DAYS - 30, n)
    rate = rng.gamma(1.3, 0.6 / 1.3, n) / 30  # purchases per day
    dropout = registered + rng.exponential(300, n)
    alive_until = np.minimum(dropout, stop)
    expected = rate * np.maximum(alive_until - registered, 0)
    count = rng.poisson(expected)
    cid = np.repeat(np.arange(n), count)
    at = registered[cid] + rng.uniform(0, 1, cid.size) * (alive_until - registered)[cid]
    amount = np.round(rng.lognormal(8.3, 0.9, cid.size), 0)
    types = np.full(cid.size, EVENT_TYPES.index(EventType.PURCHASE))
    shopping = [CHANNELS.index(c) for c in (Channel.POS, Channel.WEB, Channel.MOBILE_APP)]
    channel = rng.choice(shopping, size=cid.size, p=[0.55, 0.2, 0.25])
    # Returns of some purchases, visits and contacts, campaign opens.
    back = rng.random(cid.size) < 0.06
    extra = [
        (cid[back], at[back] + rng.uniform(1, 21, int(back.sum())), amount[back] * 0.6,
         EventType.RETURN, channel[back]),
    ]  # fmt: skip
    for kind, mean, where in (
        (EventType.VISIT, 0.4, shopping),
        (EventType.CONTACT, 0.05, [CHANNELS.index(Channel.CONTACT_CENTER)]),
        (EventType.CAMPAIGN_RESPONSE, 0.3, [CHANNELS.index(Channel.WEB)]),
    ):
        k = rng.poisson(np.maximum(expected * mean, 0.02))
        who = np.repeat(np.arange(n), k)
        when = registered[who] + rng.uniform(0, 1, who.size) * (alive_until - registered)[who]
        chans = rng.choice(where, size=who.size)
        extra.append((who, when, np.full(who.size, np.nan), kind, chans))
    parts_cid = [cid] + [item[0] for item in extra]
    parts_at = [at] + [item[1] for item in extra]
    parts_amount = [amount] + [item[2] for item in extra]
    parts_type = [types] + [np.full(item[0].size, EVENT_TYPES.index(item[3])) for item in extra]
    parts_channel = [channel] + [item[4] for item in extra]
    ev_cid = np.concatenate(parts_cid).astype(np.int64)
    ev_at = np.concatenate(parts_at)
    order = np.argsort(ev_at, kind="stable")
    ev_cid, ev_at = ev_cid[order], ev_at[order]
    ev_type = np.concatenate(parts_type).astype(np.int64)[order]
    ev_amount = np.concatenate(parts_amount)[order]
    ev_channel = np.concatenate(parts_channel).astype(np.int64)[order]
    contact = ev_type == EVENT_TYPES.index(EventType.CONTACT)
    satisfaction = np.where(contact, rng.integers(1, 6, ev_cid.size), np.nan).astype(np.float64)
    response = ev_type == EVENT_TYPES.index(EventType.CAMPAIGN_RESPONSE)
    action = np.where(response, ACTIONS.index(CampaignAction.OPENED), -1).astype(np.int64)

    # Ledger: one EARN entry per purchase (1 point per 100 of spend), some redemptions.
    bought = ev_type == EVENT_TYPES.index(EventType.PURCHASE)
    le_cid, le_at = ev_cid[bought], ev_at[bought]
    le_points = np.floor(np.nan_to_num(ev_amount[bought]) / 100)
    le_kind = np.where(rng.random(le_cid.size) < 0.1, "REDEEM", "EARN").astype(np.str_)
    le_points = np.where(le_kind == "REDEEM", -le_points, le_points)

    # Influence: reviews by one customer in five, votes, referrals, a few social profiles.
    reviewers = np.flatnonzero(rng.random(n) < 0.2)
    rv_cid = np.repeat(reviewers, rng.integers(1, 4, reviewers.size))
    rv_at = registered[rv_cid] + rng.uniform(0, 1, rv_cid.size) * (stop - registered[rv_cid])
    votes = rng.poisson(2.0, rv_cid.size)
    vote_review = np.repeat(np.arange(rv_cid.size), votes)
    vote_voter = rng.integers(0, 2**62, vote_review.size, dtype=np.int64)
    vote_at = rv_at[vote_review] + rng.exponential(10, vote_review.size)
    referees = np.flatnonzero(rng.random(n) < 0.1)
    referrers = rng.integers(0, n, referees.size)
    ref_at = registered[referees] - rng.uniform(0, 14, referees.size)
    first_buy = np.full(n, np.nan)
    np.fmin.at(first_buy, ev_cid[bought], ev_at[bought])
    social = np.flatnonzero(rng.random(n) < 0.15)
    linked = registered[social] + rng.uniform(0, 30, social.size)
    by_time = np.argsort(linked, kind="stable")  # one count per profile, when it was linked
    return History(
        owners=[uuid.UUID(int=int(k) + 1) for k in range(n)],
        until=stop,
        currency="RUB",
        registered_at=registered,
        status=np.full(n, STATUSES.index(CustomerStatus.ACTIVE), dtype=np.int64),
        profiled=np.ones(n, dtype=np.bool_),
        ev_cid=ev_cid,
        ev_type=ev_type,
        ev_channel=ev_channel,
        ev_at=ev_at,
        ev_amount=ev_amount,
        ev_satisfaction=satisfaction,
        ev_action=action,
        rv_cid=rv_cid.astype(np.int64),
        rv_at=rv_at,
        vote_review=vote_review.astype(np.int64),
        vote_voter=vote_voter,
        vote_at=vote_at,
        vote_helpful=rng.random(vote_review.size) < 0.75,
        vote_profiled=np.ones(vote_review.size, dtype=np.bool_),
        ref_referrer=referrers.astype(np.int64),
        ref_referee=referees.astype(np.int64),
        ref_created_at=ref_at,
        ref_registered_at=registered[referees],
        ref_converted_at=first_buy[referees],
        so_cid=social.astype(np.int64),
        so_linked_at=linked,
        fc_profile=np.arange(social.size, dtype=np.int64)[by_time],
        fc_followers=np.floor(rng.lognormal(4.8, 1.1, social.size))[by_time],
        fc_at=linked[by_time],
        le_cid=le_cid.astype(np.int64),
        le_kind=le_kind,
        le_points=le_points,
        le_at=le_at,
        tc_cid=np.zeros(0, dtype=np.int64),
        tc_rank=np.zeros(0),
        tc_at=np.zeros(0),
    )
