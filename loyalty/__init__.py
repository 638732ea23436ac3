"""The loyalty engine: program versions, a ledger of lots, earning, redemption, tiers, expiry
and referral rewards. `install()` subscribes it to the customer graph's facts."""

from loyalty.listener import install

__all__ = ["install"]
