"""Expected failures of data subject requests (exposed as the GraphQL enum `RequestErrorCode`)."""

from __future__ import annotations

from enum import StrEnum

from core.errors import DomainError


class RequestErrorCode(StrEnum):
    """Expected failures of data subject requests (GraphQL `RequestErrorCode`)."""

    INVALID_INPUT = "INVALID_INPUT"
    CUSTOMER_NOT_FOUND = "CUSTOMER_NOT_FOUND"
    NOT_YOUR_DATA = "NOT_YOUR_DATA"
    REQUEST_NOT_FOUND = "REQUEST_NOT_FOUND"
    INVALID_TRANSITION = "INVALID_TRANSITION"
    REASON_REQUIRED = "REASON_REQUIRED"
    EXTENSION_NOT_ALLOWED = "EXTENSION_NOT_ALLOWED"
    ALREADY_EXTENDED = "ALREADY_EXTENDED"
    EXTENSION_TOO_LATE = "EXTENSION_TOO_LATE"
    CHANGES_REQUIRED = "CHANGES_REQUIRED"
    CHANGES_NOT_ALLOWED = "CHANGES_NOT_ALLOWED"
    PURPOSE_REQUIRED = "PURPOSE_REQUIRED"
    PURPOSE_NOT_ALLOWED = "PURPOSE_NOT_ALLOWED"
    UNKNOWN_FIELD = "UNKNOWN_FIELD"
    CHANNEL_REQUIRED = "CHANNEL_REQUIRED"
    CHANNEL_NOT_ALLOWED = "CHANNEL_NOT_ALLOWED"
    # Met on execution, from the services that do the work (same names, so they map by value).
    SUBJECT_NOT_FOUND = "SUBJECT_NOT_FOUND"
    SUBJECT_ERASED = "SUBJECT_ERASED"
    ALREADY_ERASED = "ALREADY_ERASED"
    CONSENT_NOT_GRANTED = "CONSENT_NOT_GRANTED"
    OUT_OF_ORDER = "OUT_OF_ORDER"
    EXECUTION_FAILED = "EXECUTION_FAILED"
    CONFLICT = "CONFLICT"


def request_error(code: RequestErrorCode, message: str, *field: str) -> DomainError:
    return DomainError(code, message, list(field) if field else None)


def as_request_error(error: DomainError) -> DomainError:
    """An error of a service a request runs (subject rights, consent, enforcement) under the
    request's own code: the same name when it has one, else EXECUTION_FAILED."""
    try:
        code = RequestErrorCode(str(error.code))
    except ValueError:
        code = RequestErrorCode.EXECUTION_FAILED
    return DomainError(code, error.message, error.field)
