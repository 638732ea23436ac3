"""Purchase and return lines: one validation and pricing rule for every path.

A line gives its quantity and either a unit price or the line's total (`total_minor`), or both
when they agree. A total that does not divide by its quantity keeps the quantity: the unit price
stored is the floor and the line's total is what was paid. The API, the importer, the bulk path
and `pointsQuote` all call `check_lines` and `price_line`, so they cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from graph.errors import GraphErrorCode, graph_error

MAX_LINES = 500
MAX_QUANTITY = 100_000
MAX_UNIT_PRICE_MINOR = 10**12
MAX_TOTAL_MINOR = 10**15  # far below 2**63: every sum the database makes stays in range


@dataclass(frozen=True, slots=True)
class LineInput:
    sku: str
    quantity: int
    category: str = ""
    unit_price_minor: int | None = None
    total_minor: int | None = None

    def fingerprint(self) -> dict[str, object]:
        """The line as a request hash sees it (unchanged for lines without a total, so keys
        recorded before totals existed still replay)."""
        shown: dict[str, object] = {
            "sku": self.sku,
            "quantity": self.quantity,
            "category": self.category,
            "unit_price_minor": self.unit_price_minor or 0,
        }
        if self.total_minor is not None:
            shown["total_minor"] = self.total_minor
            shown["unit_price_minor"] = self.unit_price_minor
        return shown


@dataclass(frozen=True, slots=True)
class PricedLine:
    sku: str
    category: str
    quantity: int
    unit_price_minor: int
    total_minor: int


def price_line(line: LineInput) -> PricedLine:
    """The line's unit price and total; call after `check_lines` (which ensures they agree)."""
    quantity = line.quantity
    if line.total_minor is not None:
        total = line.total_minor
        unit = total // quantity if quantity > 0 else 0
    else:
        unit = line.unit_price_minor or 0
        total = quantity * unit
    return PricedLine(line.sku.strip(), line.category.strip(), quantity, unit, total)


def check_lines(lines: list[LineInput], *, priced: bool) -> list[PricedLine]:
    """Validate lines (errors name the input path, never a value) and price them."""
    if not 1 <= len(lines) <= MAX_LINES:
        raise graph_error(GraphErrorCode.INVALID_INPUT, f"1 to {MAX_LINES} lines", "lines")
    for position, line in enumerate(lines):
        at = ("lines", str(position))
        if not line.sku.strip() or len(line.sku) > 64:
            raise graph_error(GraphErrorCode.INVALID_INPUT, "a sku has 1-64 characters", *at, "sku")
        if not 0 < line.quantity <= MAX_QUANTITY:
            raise graph_error(
                GraphErrorCode.INVALID_INPUT, "quantity must be positive", *at, "quantity"
            )
        if not priced:
            continue
        unit, total = line.unit_price_minor, line.total_minor
        if unit is None and total is None:
            raise graph_error(
                GraphErrorCode.INVALID_INPUT,
                "give unitPriceMinor or totalMinor",
                *at,
                "unitPriceMinor",
            )
        if unit is not None and not 0 <= unit <= MAX_UNIT_PRICE_MINOR:
            problem = (
                "price must not be negative"
                if unit < 0
                else f"price must be at most {MAX_UNIT_PRICE_MINOR:,} minor units"
            )
            raise graph_error(GraphErrorCode.INVALID_INPUT, problem, *at, "unitPriceMinor")
        if total is not None and not 0 <= total <= MAX_TOTAL_MINOR:
            raise graph_error(
                GraphErrorCode.INVALID_INPUT,
                f"a line total is between 0 and {MAX_TOTAL_MINOR:,}",
                *at,
                "totalMinor",
            )
        if unit is not None and total is not None and total // line.quantity != unit:
            raise graph_error(
                GraphErrorCode.INVALID_INPUT,
                "totalMinor does not match quantity x unitPriceMinor",
                *at,
                "totalMinor",
            )
        if len(line.category) > 64:
            raise graph_error(
                GraphErrorCode.INVALID_INPUT,
                "a category has at most 64 characters",
                *at,
                "category",
            )
    priced_lines = [price_line(line) for line in lines]
    if priced and sum(line.total_minor for line in priced_lines) > MAX_TOTAL_MINOR:
        raise graph_error(GraphErrorCode.INVALID_INPUT, "the total is implausibly large", "lines")
    return priced_lines


def refund_share(total_minor: int, quantity: int, *, before: int, take: int) -> int:
    """What `take` units of a line refund when `before` units were returned already: the
    floors of proportional shares, so returning every unit refunds exactly the line's total."""
    if quantity <= 0:
        return 0
    return total_minor * (before + take) // quantity - total_minor * before // quantity
