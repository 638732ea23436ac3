"""Earning rules as a pure function of a purchase: the same for POS, web and app, for the
real purchase and for `pointsQuote`, and for the demo's bulk history.

Points are computed exactly with decimals and floored once per purchase, so a purchase split
over more lines never earns less than the same spend on one line would by more than a point.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal

from graph.enums import Channel
from loyalty.definition import Match, ProgramDefinition


@dataclass(frozen=True, slots=True)
class Line:
    sku: str
    category: str
    quantity: int
    unit_price_minor: int
    total: int | None = None  # the line's total when given (see graph.lines.price_line)

    @property
    def total_minor(self) -> int:
        return self.quantity * self.unit_price_minor if self.total is None else self.total


@dataclass(frozen=True, slots=True)
class Cart:
    channel: Channel
    occurred_at: datetime
    currency: str
    lines: tuple[Line, ...]

    @property
    def total_minor(self) -> int:
        return sum(line.total_minor for line in self.lines)


@dataclass(frozen=True, slots=True)
class Earning:
    """Points a cart earns before caps: the total, and which rules applied (codes, in order)."""

    points: int
    rules: tuple[str, ...] = field(default=())
    tier_multiplier: Decimal = Decimal(1)


def _applies(rule_when: Match, line: Line, cart: Cart, tier: str) -> bool:
    return (
        (not rule_when.categories or line.category in rule_when.categories)
        and (not rule_when.skus or line.sku in rule_when.skus)
        and (not rule_when.channels or cart.channel in rule_when.channels)
        and (not rule_when.tiers or tier in rule_when.tiers)
    )


def compute_earning(program: ProgramDefinition, cart: Cart, *, tier: str) -> Earning:
    """Points for `cart` by a customer in `tier`, before the daily and monthly caps."""
    if cart.currency != program.currency:
        return Earning(points=0)
    base_rate = Decimal(program.earn.points) / Decimal(program.earn.per_minor)
    applied: list[str] = []
    exact = Decimal(0)
    for line in cart.lines:
        factor = Decimal(1)
        for rule in program.earn.rules:  # already in descending priority
            if not rule.covers(cart.occurred_at) or not _applies(rule.when, line, cart, tier):
                continue
            factor *= rule.multiplier
            if rule.code not in applied:
                applied.append(rule.code)
            if rule.stop:
                break
        exact += Decimal(line.total_minor) * base_rate * factor
    level = program.tier(tier)
    exact *= level.multiplier
    points = int(exact.to_integral_value(rounding=ROUND_FLOOR))
    return Earning(points=max(points, 0), rules=tuple(applied), tier_multiplier=level.multiplier)


def share_of(total: int, part: int, whole: int) -> int:
    """floor(total * part / whole) in integers: the proportional share used by returns."""
    if whole <= 0:
        return 0
    return (total * part) // whole


def max_redeemable(program: ProgramDefinition, *, order_total_minor: int) -> int:
    """The most points the redemption policy allows on an order of this total."""
    rules = program.redemption
    money = order_total_minor * rules.max_share_percent // 100
    return money // rules.point_value_minor
