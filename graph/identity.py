"""Identifier normalisation. Runs before anything else touches an identifier.

Error messages never echo the value: it is personal data.
"""

from __future__ import annotations

import re

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from graph.enums import IdentityKind
from graph.errors import GraphErrorCode, graph_error

DEFAULT_REGION = "RU"
_CARD = re.compile(r"^[0-9A-Z]{6,32}$")
_TOKEN = re.compile(r"^[\x21-\x7e]{1,200}$")


def normalise_phone(raw: str, *field: str) -> str:
    """E.164, parsing national formats in the default region (`8 (916) ...` is Russian)."""
    try:
        parsed = phonenumbers.parse(raw, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        raise graph_error(GraphErrorCode.INVALID_PHONE, "not a phone number", *field) from None
    if not phonenumbers.is_valid_number(parsed):
        raise graph_error(GraphErrorCode.INVALID_PHONE, "not a valid phone number", *field)
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def normalise_email(raw: str, *field: str) -> str:
    try:
        result = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError:
        raise graph_error(
            GraphErrorCode.INVALID_EMAIL, "not a valid e-mail address", *field
        ) from None
    return result.normalized.lower()


def normalise(
    kind: IdentityKind, raw: str, *, source_system: str | None = None, field: tuple[str, ...] = ()
) -> str:
    """The canonical form of an identifier, the only form that is indexed and stored."""
    if kind is IdentityKind.PHONE:
        return normalise_phone(raw, *field)
    if kind is IdentityKind.EMAIL:
        return normalise_email(raw, *field)
    if kind is IdentityKind.LOYALTY_CARD:
        card = re.sub(r"[\s-]", "", raw).upper()
        if not _CARD.match(card):
            raise graph_error(
                GraphErrorCode.INVALID_IDENTIFIER, "a card number is 6-32 letters or digits", *field
            )
        return card
    value = raw.strip()
    if not _TOKEN.match(value):
        raise graph_error(
            GraphErrorCode.INVALID_IDENTIFIER,
            "identifier must be 1-200 printable characters",
            *field,
        )
    if kind is IdentityKind.EXTERNAL_ID:
        system = (source_system or "").strip().lower()
        if not system or not _TOKEN.match(system) or ":" in system:
            raise graph_error(
                GraphErrorCode.INVALID_IDENTIFIER,
                "an external id needs its source system",
                *field[:-1],
                "sourceSystem",
            )
        return f"{system}:{value}"
    return value
