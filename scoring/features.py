"""Point-in-time features: the one function training and serving both call.

`compute_features(history, cutoff)` looks only at what happened before `cutoff` (every window
is `at < cutoff`), so a model trained on features at past cutoffs sees exactly what it will see
when it scores today. Features are local to a customer: their own events and ledger, the votes
on their reviews, and the purchases of the people they referred. The global influence score
(`scoring.influence`) is a product of the batch, not a feature, so one customer can be scored
alone with the very numbers the batch would give them.

Social follower counts are the ones last observed before the cutoff (`graph.models.FollowerCount`
keeps every observation); a profile counts from the day it was linked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import numpy as np
import pandas as pd

from core.clock import as_utc
from graph.enums import CampaignAction, Channel, CustomerStatus, EventType
from scoring.classic import DERIVED_DESCRIPTIONS
from scoring.history import (
    ACTIONS,
    CHANNELS,
    EVENT_TYPES,
    STATUSES,
    Bools,
    Floats,
    History,
    counted_votes,
    days,
    joined_referrals,
)

# 2: follower counts as observed before the cutoff; referees and voters who may not be profiled
# count for nobody
# 3: purchase days (same-day purchases are one transaction, as BG/NBD and Gamma-Gamma read them)
FEATURE_VERSION = 3
EARNING = ("EARN", "BONUS", "REFERRAL")
SPENDING = ("REDEEM", "RESERVE", "RELEASE", "REFUND")  # signed: payments and what came back


class FeatureGroup(StrEnum):
    RFM = "rfm"
    BEHAVIOUR = "behaviour"
    LOYALTY = "loyalty"
    INFLUENCE = "influence"
    CONTEXT = "context"


@dataclass(frozen=True, slots=True)
class Feature:
    name: str
    group: FeatureGroup
    description: str


def _f(name: str, group: FeatureGroup, description: str) -> Feature:
    return Feature(name, group, description)


R, B, L = FeatureGroup.RFM, FeatureGroup.BEHAVIOUR, FeatureGroup.LOYALTY
INF, CTX = FeatureGroup.INFLUENCE, FeatureGroup.CONTEXT
FEATURES: tuple[Feature, ...] = (
    _f("recency_days", R, "days since the last purchase"),
    _f("frequency", R, "purchases before the cutoff"),
    _f("frequency_90", R, "purchases in the last 90 days"),
    _f("frequency_365", R, "purchases in the last 365 days"),
    _f("monetary", R, "net spend (purchases less returns), major units"),
    _f("spend_90", R, "net spend in the last 90 days"),
    _f("spend_365", R, "net spend in the last 365 days"),
    _f("average_check", R, "average purchase amount"),
    _f("repeat_average", R, "average amount of the purchases after the first"),
    _f("avg_interpurchase_days", R, "average days between purchases"),
    _f("lifetime_days", R, "days since the first purchase"),
    _f("tenure_days", R, "days since registration"),
    _f("purchase_trend_90", R, "purchase rate of the last 90 days over the rate before"),
    _f("purchase_days", R, "days with a purchase (UTC days; same-day purchases are one)"),
    _f("purchase_day_span", R, "days from the first purchase day to the last"),
    _f("purchase_day_age", R, "days from the first purchase day to the last day observed"),
    _f("repeat_day_average", R, "average spend of the purchase days after the first"),
    _f("share_pos", B, "share of purchases in stores"),
    _f("share_web", B, "share of purchases on the web"),
    _f("share_app", B, "share of purchases in the mobile app"),
    _f("returns_share", B, "returned amount over purchased amount"),
    _f("returns_count", B, "returns before the cutoff"),
    _f("visits_90", B, "visits without a purchase in the last 90 days"),
    _f("contacts_90", B, "contact-centre contacts in the last 90 days"),
    _f("contacts_365", B, "contact-centre contacts in the last 365 days"),
    _f("satisfaction_365", B, "mean contact satisfaction (1-5) in the last 365 days"),
    _f("low_satisfaction_180", B, "contacts rated 1-2 in the last 180 days"),
    _f("days_since_contact", B, "days since the last contact-centre contact"),
    _f("campaign_opened_365", B, "campaign messages opened in the last 365 days"),
    _f("campaign_clicked_365", B, "campaign messages clicked in the last 365 days"),
    _f("campaign_converted_365", B, "campaign conversions in the last 365 days"),
    _f("unsubscribed", B, "unsubscribed from a campaign channel (0/1)"),
    _f("points_earned_365", L, "points earned in the last 365 days"),
    _f("points_redeemed_365", L, "points spent in the last 365 days"),
    _f("points_balance", L, "points balance at the cutoff (including pending)"),
    _f("tier_rank", L, "tier at the cutoff, 0 = the lowest"),
    _f("reviews_written", INF, "reviews written"),
    _f("helpful_votes", INF, "helpful votes received on reviews"),
    _f("review_voters", INF, "distinct people who voted on the customer's reviews"),
    _f("referrals_made", INF, "referral invitations created"),
    _f("referrals_converted", INF, "referred people who made a first purchase"),
    _f("referred_spend", INF, "net spend of the people the customer referred"),
    _f("referred_spend_2", INF, "net spend of the people those referees referred"),
    _f("social_followers", INF, "followers over linked social profiles"),
    _f("social_profiles", INF, "linked social profiles"),
    # The season the horizon falls in (demand differs by month): the same for every customer.
    _f("season_sin", CTX, "sine of the cutoff's day of the year"),
    _f("season_cos", CTX, "cosine of the cutoff's day of the year"),
)
FEATURE_NAMES: tuple[str, ...] = tuple(feature.name for feature in FEATURES)
INFLUENCE_FEATURES: tuple[str, ...] = tuple(f.name for f in FEATURES if f.group is INF)
DESCRIPTIONS = {
    **{feature.name: feature.description for feature in FEATURES},
    **DERIVED_DESCRIPTIONS,  # computed from these by the model (scoring.classic)
}

_PURCHASE = EVENT_TYPES.index(EventType.PURCHASE)
_RETURN = EVENT_TYPES.index(EventType.RETURN)
_VISIT = EVENT_TYPES.index(EventType.VISIT)
_CONTACT = EVENT_TYPES.index(EventType.CONTACT)
_RESPONSE = EVENT_TYPES.index(EventType.CAMPAIGN_RESPONSE)
_ACTIVE = STATUSES.index(CustomerStatus.ACTIVE)


class _Counter:
    """Per-owner sums of the rows selected by a mask (bincount: sums in row order)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def count(self, cid: np.ndarray, mask: Bools) -> Floats:
        return np.bincount(cid[mask], minlength=self.size).astype(np.float64)

    def total(self, cid: np.ndarray, mask: Bools, weights: Floats) -> Floats:
        return np.bincount(cid[mask], weights=weights[mask], minlength=self.size).astype(np.float64)

    def last(self, cid: np.ndarray, mask: Bools, at: Floats) -> Floats:
        out = np.full(self.size, -np.inf)
        np.maximum.at(out, cid[mask], at[mask])
        out[np.isneginf(out)] = np.nan
        return out

    def first(self, cid: np.ndarray, mask: Bools, at: Floats) -> Floats:
        out = np.full(self.size, np.inf)
        np.minimum.at(out, cid[mask], at[mask])
        out[np.isposinf(out)] = np.nan
        return out


def _ratio(top: Floats, bottom: Floats) -> Floats:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(bottom > 0, top / np.where(bottom > 0, bottom, 1.0), np.nan)


def net_spend(history: History, start: float, end: float) -> Floats:
    """Purchases less returns in [start, end) per owner, major units."""
    h, n = history, _Counter(history.size)
    window = (h.ev_at >= start) & (h.ev_at < end) & ~np.isnan(h.ev_amount)
    gross = n.total(h.ev_cid, window & (h.ev_type == _PURCHASE), h.ev_amount)
    back = n.total(h.ev_cid, window & (h.ev_type == _RETURN), h.ev_amount)
    result: Floats = gross - back
    return result


def purchase_counts(history: History, start: float, end: float) -> Floats:
    h = history
    mask = (h.ev_at >= start) & (h.ev_at < end) & (h.ev_type == _PURCHASE)
    return _Counter(h.size).count(h.ev_cid, mask)


def compute_features(history: History, cutoff: datetime) -> pd.DataFrame:
    """Features of every owner in `history` as of `cutoff` (index: owner code, columns:
    FEATURE_NAMES, float64, NaN where a feature has no meaning, e.g. no purchase yet)."""
    c = days(cutoff)
    h, n = history, _Counter(history.size)
    out: dict[str, Floats] = {}
    before = h.ev_at < c
    has_amount = ~np.isnan(h.ev_amount)
    purchase = before & (h.ev_type == _PURCHASE)
    back = before & (h.ev_type == _RETURN)
    amount = np.nan_to_num(h.ev_amount)
    frequency = n.count(h.ev_cid, purchase)
    first, last = n.first(h.ev_cid, purchase, h.ev_at), n.last(h.ev_cid, purchase, h.ev_at)
    priced = purchase & has_amount
    priced_count = n.count(h.ev_cid, priced)
    gross = n.total(h.ev_cid, priced, amount)
    returned = n.total(h.ev_cid, back & has_amount, amount)
    # Rows are in time order: an owner's first priced row is their first priced purchase.
    rows = np.flatnonzero(priced)
    buyers, first_row = np.unique(h.ev_cid[rows], return_index=True)
    first_amount = np.zeros(h.size)
    first_amount[buyers] = amount[rows[first_row]]
    out["recency_days"] = c - last
    out["frequency"] = frequency
    out["frequency_90"] = purchase_counts(h, c - 90, c)
    out["frequency_365"] = purchase_counts(h, c - 365, c)
    out["monetary"] = gross - returned
    out["spend_90"] = net_spend(h, c - 90, c)
    out["spend_365"] = net_spend(h, c - 365, c)
    out["average_check"] = _ratio(gross, priced_count)
    out["repeat_average"] = _ratio(gross - first_amount, priced_count - 1)
    out["avg_interpurchase_days"] = _ratio(last - first, frequency - 1)
    out["lifetime_days"] = c - first
    out["tenure_days"] = c - h.registered_at
    earlier_days = np.maximum(c - 90 - first, 30.0)
    rate_before = np.where(first < c - 90, (frequency - out["frequency_90"]) / earlier_days, np.nan)
    out["purchase_trend_90"] = _ratio(out["frequency_90"] / 90.0, rate_before)
    _purchase_days(h, c, purchase, priced, amount, out)
    for name, channel in (("pos", Channel.POS), ("web", Channel.WEB), ("app", Channel.MOBILE_APP)):
        bought = n.count(h.ev_cid, purchase & (h.ev_channel == CHANNELS.index(channel)))
        out[f"share_{name}"] = _ratio(bought, frequency)
    out["returns_share"] = _ratio(returned, gross)
    out["returns_count"] = n.count(h.ev_cid, back)
    out["visits_90"] = n.count(h.ev_cid, before & (h.ev_at >= c - 90) & (h.ev_type == _VISIT))
    _contacts(h, c, n, out)
    _campaigns(h, c, n, out)
    _loyalty(h, c, n, out)
    _influence(h, c, n, out, monetary=out["monetary"])
    angle = 2 * np.pi * as_utc(cutoff).timetuple().tm_yday / 365.25
    out["season_sin"] = np.full(h.size, np.sin(angle))
    out["season_cos"] = np.full(h.size, np.cos(angle))
    return pd.DataFrame({name: out[name] for name in FEATURE_NAMES})


def _purchase_days(
    h: History, c: float, purchase: Bools, priced: Bools, amount: Floats, out: dict[str, Floats]
) -> None:
    """The BG/NBD and Gamma-Gamma view of purchases in whole UTC days, as the literature and
    its reference implementation (`lifetimes`, freq "D") read a transaction log: the purchases
    of one day are one transaction worth their sum; the last day observed is the cutoff's
    (the day before it when the cutoff is midnight)."""
    rows = np.flatnonzero(purchase)
    cid, day = h.ev_cid[rows], np.floor(h.ev_at[rows])
    order = np.lexsort((day, cid))  # stable: within a day, rows stay in time order
    rows, cid, day = rows[order], cid[order], day[order]
    new = np.ones(rows.size, dtype=np.bool_)
    new[1:] = (cid[1:] != cid[:-1]) | (day[1:] != day[:-1])
    group = np.cumsum(new) - 1
    g_cid, g_day, groups = cid[new], day[new], int(new.sum())
    paid = np.where(priced[rows], amount[rows], 0.0)
    g_amount = np.bincount(group, weights=paid, minlength=groups).astype(np.float64)
    g_priced = np.bincount(group, weights=priced[rows].astype(np.float64), minlength=groups) > 0
    n = _Counter(h.size)
    everyone = np.ones(groups, dtype=np.bool_)
    first, last = n.first(g_cid, everyone, g_day), n.last(g_cid, everyone, g_day)
    out["purchase_days"] = n.count(g_cid, everyone)
    out["purchase_day_span"] = last - first
    out["purchase_day_age"] = np.ceil(c) - 1.0 - first
    # Groups are in (owner, day) order: an owner's first priced group is their first priced day.
    priced_groups = np.flatnonzero(g_priced)
    buyers, first_group = np.unique(g_cid[priced_groups], return_index=True)
    first_amount = np.zeros(h.size)
    first_amount[buyers] = g_amount[priced_groups[first_group]]
    gross = n.total(g_cid, g_priced, g_amount)
    out["repeat_day_average"] = _ratio(gross - first_amount, n.count(g_cid, g_priced) - 1)


def _contacts(h: History, c: float, n: _Counter, out: dict[str, Floats]) -> None:
    contact = (h.ev_at < c) & (h.ev_type == _CONTACT)
    rated = contact & ~np.isnan(h.ev_satisfaction) & (h.ev_at >= c - 365)
    out["contacts_90"] = n.count(h.ev_cid, contact & (h.ev_at >= c - 90))
    out["contacts_365"] = n.count(h.ev_cid, contact & (h.ev_at >= c - 365))
    score = np.nan_to_num(h.ev_satisfaction)
    out["satisfaction_365"] = _ratio(n.total(h.ev_cid, rated, score), n.count(h.ev_cid, rated))
    low = contact & (h.ev_at >= c - 180) & (h.ev_satisfaction <= 2)
    out["low_satisfaction_180"] = n.count(h.ev_cid, low)
    out["days_since_contact"] = c - n.last(h.ev_cid, contact, h.ev_at)


def _campaigns(h: History, c: float, n: _Counter, out: dict[str, Floats]) -> None:
    response = (h.ev_at < c) & (h.ev_type == _RESPONSE)
    recent = response & (h.ev_at >= c - 365)
    for name, action in (
        ("opened", CampaignAction.OPENED),
        ("clicked", CampaignAction.CLICKED),
        ("converted", CampaignAction.CONVERTED),
    ):
        mask = recent & (h.ev_action == ACTIONS.index(action))
        out[f"campaign_{name}_365"] = n.count(h.ev_cid, mask)
    left = response & (h.ev_action == ACTIONS.index(CampaignAction.UNSUBSCRIBED))
    out["unsubscribed"] = np.minimum(n.count(h.ev_cid, left), 1.0)


def _loyalty(h: History, c: float, n: _Counter, out: dict[str, Floats]) -> None:
    before = h.le_at < c
    recent = before & (h.le_at >= c - 365)
    earning, spending = np.isin(h.le_kind, EARNING), np.isin(h.le_kind, SPENDING)
    out["points_earned_365"] = n.total(h.le_cid, recent & earning, h.le_points)
    out["points_redeemed_365"] = -n.total(h.le_cid, recent & spending, h.le_points)
    out["points_balance"] = n.total(h.le_cid, before, h.le_points)
    # The latest tier change before the cutoff: rows are in time order, so an owner's last row.
    rank = np.zeros(h.size)
    changed = np.flatnonzero((h.tc_at < c) & ~np.isnan(h.tc_rank))
    owners, last_from_end = np.unique(h.tc_cid[changed][::-1], return_index=True)
    rank[owners] = h.tc_rank[changed[::-1][last_from_end]]
    out["tier_rank"] = rank


def _influence(
    h: History, c: float, n: _Counter, out: dict[str, Floats], *, monetary: Floats
) -> None:
    out["reviews_written"] = n.count(h.rv_cid, h.rv_at < c)
    author = h.rv_cid[h.vote_review]
    voted = counted_votes(h, c)
    out["helpful_votes"] = n.count(author, voted & h.vote_helpful)
    out["review_voters"] = _distinct_pairs(author[voted], h.vote_voter[voted], h.size)
    out["referrals_made"] = n.count(h.ref_referrer, h.ref_created_at < c)
    joined = joined_referrals(h, c)
    out["referrals_converted"] = n.count(h.ref_referrer, joined & (h.ref_converted_at < c))
    referees = h.ref_referee[joined]
    direct = np.bincount(
        h.ref_referrer[joined], weights=monetary[referees], minlength=h.size
    ).astype(np.float64)
    out["referred_spend"] = direct
    out["referred_spend_2"] = np.bincount(
        h.ref_referrer[joined], weights=direct[referees], minlength=h.size
    ).astype(np.float64)
    linked = h.so_linked_at < c
    out["social_followers"] = n.total(h.so_cid, linked, latest_followers(h, c))
    out["social_profiles"] = n.count(h.so_cid, linked)


def latest_followers(h: History, c: float) -> Floats:
    """Per social profile, the follower count last observed before `c` (0 before any)."""
    count = np.zeros(h.so_cid.size)
    seen = np.flatnonzero(h.fc_at < c)
    # Observations are in time order, so a profile's last one is its first from the end.
    profiles, last_from_end = np.unique(h.fc_profile[seen][::-1], return_index=True)
    count[profiles] = h.fc_followers[seen[::-1][last_from_end]]
    return count


def _distinct_pairs(owner: np.ndarray, other: np.ndarray, size: int) -> Floats:
    """Per owner, how many distinct `other` values its rows hold."""
    order = np.lexsort((other, owner))
    owner, other = owner[order], other[order]
    new = np.ones(owner.size, dtype=np.bool_)
    new[1:] = (owner[1:] != owner[:-1]) | (other[1:] != other[:-1])
    return np.bincount(owner[new], minlength=size).astype(np.float64)


def eligible(history: History, cutoff: datetime) -> Bools:
    """Owners a model scores at `cutoff`: active, registered and with a purchase before it."""
    c = days(cutoff)
    bought = purchase_counts(history, -np.inf, c) > 0
    result: Bools = (history.status == _ACTIVE) & (history.registered_at < c) & bought
    return result
