"""The loyalty engine's vocabulary as GraphQL enums (defined once, in `loyalty/`).

`strawberry.enum` registers the domain classes themselves, so resolvers annotate with the
domain enums directly. GraphQL names the members; the domain's values stay internal.
"""

from __future__ import annotations

import strawberry

from loyalty.definition import BonusEvent, Downgrade, ExpiryPolicy, ReturnPolicy, TierMetric
from loyalty.errors import LoyaltyErrorCode
from loyalty.models import EntryKind, ReservationStatus

strawberry.enum(LoyaltyErrorCode, name="LoyaltyErrorCode")
strawberry.enum(EntryKind, name="LedgerEntryKind")
strawberry.enum(ReservationStatus, name="PointsReservationStatus")
strawberry.enum(BonusEvent, name="BonusEvent")
strawberry.enum(ExpiryPolicy, name="ExpiryPolicy")
strawberry.enum(ReturnPolicy, name="ReturnPolicy")
strawberry.enum(TierMetric, name="TierMetric")
strawberry.enum(Downgrade, name="TierDowngrade")

__all__ = [
    "BonusEvent",
    "Downgrade",
    "EntryKind",
    "ExpiryPolicy",
    "LoyaltyErrorCode",
    "ReservationStatus",
    "ReturnPolicy",
    "TierMetric",
]
