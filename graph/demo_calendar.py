"""The demo's two years: days weighted by shopping demand, and small sampling helpers."""

from __future__ import annotations

import bisect
import math
import random
from datetime import date, datetime, timedelta

DAYS = 730
MONTH_DEMAND = (0.85, 0.95, 1.1, 0.95, 0.9, 0.8, 0.75, 0.8, 0.95, 1.0, 1.15, 1.45)


def weighted(rng: random.Random, pairs: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([value for value, _ in pairs], [weight for _, weight in pairs])[0]


def poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


class Calendar:
    """Two years of days ending at the anchor, each weighted by shopping demand."""

    def __init__(self, anchor: datetime, days: int = DAYS) -> None:
        self.anchor = anchor
        self.start = anchor - timedelta(days=days)
        self.days = days
        weights = [self._weight((self.start + timedelta(days=d)).date()) for d in range(days)]
        mean = sum(weights) / days
        self.weights = [weight / mean for weight in weights]
        self.cum = [0.0]
        for weight in self.weights:
            self.cum.append(self.cum[-1] + weight)

    @staticmethod
    def _weight(day: date) -> float:
        weight = MONTH_DEMAND[day.month - 1]
        if day.month == 3 and day.day <= 7:
            weight *= 1.8  # 8 March gifts
        elif day.month == 12 and 15 <= day.day <= 30:
            weight *= 1.5  # New Year gifts
        elif day.month == 2 and 19 <= day.day <= 22:
            weight *= 1.3  # 23 February
        elif day.month == 11 and day.day >= 22 and day.weekday() in (3, 4, 5, 6):
            weight *= 1.6  # Black Friday weekend
        elif day.month == 1 and day.day <= 3:
            weight *= 0.5
        return weight * (1.25 if day.weekday() >= 5 else 1.0)

    def mass(self, first: int, end: int) -> float:
        """Demand-weighted number of days in [first, end)."""
        return self.cum[end] - self.cum[first] if end > first else 0.0

    def sample_day(self, rng: random.Random, first: int, end: int) -> int:
        """A day in [first, end), busy days more likely."""
        point = rng.uniform(self.cum[first], self.cum[end])
        return min(end - 1, max(first, bisect.bisect_right(self.cum, point) - 1))

    def month(self, day: int) -> int:
        return (self.start + timedelta(days=day)).month

    def at(self, day: int, rng: random.Random, *, in_store: bool) -> datetime:
        """A moment of the day: store hours (10-22 Moscow time) or evening-heavy online."""
        hour = rng.uniform(7, 19) if in_store else rng.triangular(5, 21, 17)
        return self.start + timedelta(days=day, seconds=int(hour * 3600 + rng.random() * 60))

    def day_of(self, when: datetime) -> int:
        return (when - self.start).days
