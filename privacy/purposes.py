"""The vocabulary of consent: purposes of processing, marketing channels, and how evidence of a
consent was collected. Stored as plain strings; exposed as GraphQL enums by the API layer.

152-FZ asks for a consent per purpose, given on its own. Marketing is further split per channel
(an SMS consent says nothing about calls); every other purpose has the single channel
`NO_CHANNEL` ("ANY").
"""

from __future__ import annotations

from enum import StrEnum

from core.errors import DomainError
from privacy.consent_models import NO_CHANNEL


class Purpose(StrEnum):
    LOYALTY_PARTICIPATION = "LOYALTY_PARTICIPATION"
    MARKETING = "MARKETING"
    PROFILING = "PROFILING"  # profiling and automated scoring (churn, value)
    THIRD_PARTY_TRANSFER = "THIRD_PARTY_TRANSFER"
    CROSS_BORDER_TRANSFER = "CROSS_BORDER_TRANSFER"
    DISSEMINATION = "DISSEMINATION"  # making data public, per category (152-FZ art. 10.1)


class MarketingChannel(StrEnum):
    SMS = "SMS"
    EMAIL = "EMAIL"
    PUSH = "PUSH"
    CALL = "CALL"


class ConsentStatus(StrEnum):
    GRANTED = "GRANTED"
    WITHDRAWN = "WITHDRAWN"


class CollectionChannel(StrEnum):
    """Where the consent was collected (spelled like the graph's customer channels)."""

    POS = "POS"
    WEB = "WEB"
    MOBILE_APP = "MOBILE_APP"
    CONTACT_CENTER = "CONTACT_CENTER"
    PAPER = "PAPER"  # a signed form scanned later


class CollectionMethod(StrEnum):
    """How the subject expressed it: the thing a compliance officer shows an inspector."""

    CHECKBOX = "CHECKBOX"  # an unticked box the subject ticked, on its own screen
    SIGNATURE = "SIGNATURE"  # a handwritten or on-screen signature
    SMS_CODE = "SMS_CODE"  # a one-time code sent to the subject's phone and typed back
    EMAIL_LINK = "EMAIL_LINK"  # a confirmation link sent by e-mail and followed
    RECORDED_CALL = "RECORDED_CALL"  # an oral consent on a recorded contact-centre call
    WRITTEN_REQUEST = "WRITTEN_REQUEST"  # a letter or form handed in (mostly withdrawals)


class DataCategory(StrEnum):
    """Categories of data a subject may allow to be made public (dissemination only)."""

    FIRST_NAME = "FIRST_NAME"
    LAST_NAME = "LAST_NAME"
    CITY = "CITY"
    PHOTO = "PHOTO"
    REVIEWS = "REVIEWS"
    SOCIAL_PROFILES = "SOCIAL_PROFILES"
    LOYALTY_TIER = "LOYALTY_TIER"


def channel_key(purpose: Purpose, channel: MarketingChannel | None) -> str:
    """The stored channel of a consent: the marketing channel, or `NO_CHANNEL` for the rest.

    Raises ValueError for a marketing purpose without a channel or another purpose with one
    (services check this first and answer with a typed error).
    """
    if purpose is Purpose.MARKETING:
        if channel is None:
            raise ValueError("marketing consents are per channel")
        return channel.value
    if channel is not None:
        raise ValueError(f"{purpose} consents are not per channel")
    return NO_CHANNEL


class ConsentErrorCode(StrEnum):
    """Expected failures of consent and document services (GraphQL `ConsentErrorCode`).

    The graph's codes that a consent mutation can meet (the customer checked before the
    service runs, a concurrent change) keep their graph names, so they map by value.
    """

    INVALID_INPUT = "INVALID_INPUT"
    DOCUMENT_NOT_FOUND = "DOCUMENT_NOT_FOUND"
    DOCUMENT_PURPOSE_MISMATCH = "DOCUMENT_PURPOSE_MISMATCH"
    DOCUMENT_NOT_IN_FORCE = "DOCUMENT_NOT_IN_FORCE"
    CHANNEL_REQUIRED = "CHANNEL_REQUIRED"
    CHANNEL_NOT_ALLOWED = "CHANNEL_NOT_ALLOWED"
    CATEGORIES_REQUIRED = "CATEGORIES_REQUIRED"
    CATEGORIES_NOT_ALLOWED = "CATEGORIES_NOT_ALLOWED"
    CONSENT_NOT_GRANTED = "CONSENT_NOT_GRANTED"
    INVALID_EVIDENCE = "INVALID_EVIDENCE"
    OUT_OF_ORDER = "OUT_OF_ORDER"
    CUSTOMER_NOT_FOUND = "CUSTOMER_NOT_FOUND"
    CUSTOMER_NOT_ACTIVE = "CUSTOMER_NOT_ACTIVE"
    CONFLICT = "CONFLICT"


def consent_error(code: ConsentErrorCode, message: str, *field: str) -> DomainError:
    return DomainError(code, message, list(field) if field else None)
