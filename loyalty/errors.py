"""Error codes of the loyalty engine (exposed as the GraphQL enum `LoyaltyErrorCode`).

Codes the graph also raises (a customer not found, a reused idempotency key) keep their graph
names, so a graph error inside a loyalty mutation maps onto this enum by value.
"""

from __future__ import annotations

from enum import StrEnum

from core.errors import DomainError


class LoyaltyErrorCode(StrEnum):
    INVALID_INPUT = "INVALID_INPUT"
    INVALID_POINTS = "INVALID_POINTS"
    INSUFFICIENT_POINTS = "INSUFFICIENT_POINTS"
    BELOW_MINIMUM_BALANCE = "BELOW_MINIMUM_BALANCE"
    SHARE_EXCEEDED = "SHARE_EXCEEDED"
    CURRENCY_MISMATCH = "CURRENCY_MISMATCH"
    RESERVATION_NOT_FOUND = "RESERVATION_NOT_FOUND"
    RESERVATION_EXPIRED = "RESERVATION_EXPIRED"
    RESERVATION_CLOSED = "RESERVATION_CLOSED"
    NO_ACTIVE_PROGRAM = "NO_ACTIVE_PROGRAM"
    PROGRAM_INVALID = "PROGRAM_INVALID"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    CUSTOMER_NOT_FOUND = "CUSTOMER_NOT_FOUND"
    CUSTOMER_NOT_ACTIVE = "CUSTOMER_NOT_ACTIVE"
    PURCHASE_NOT_FOUND = "PURCHASE_NOT_FOUND"
    STORE_NOT_FOUND = "STORE_NOT_FOUND"
    CONFLICT = "CONFLICT"


def loyalty_error(code: LoyaltyErrorCode, message: str, *field: str) -> DomainError:
    return DomainError(code, message, list(field) if field else None)
