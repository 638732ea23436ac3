"""Who is calling: API keys for apps, JWT bearer tokens for customers and staff."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

import jwt

from core.clock import utcnow

AUDIENCE = "loyalgraph"
ALGORITHM = "HS256"


class Role(StrEnum):
    CUSTOMER = "customer"
    APP = "app"
    OPERATOR = "operator"
    ANALYST = "analyst"
    COMPLIANCE = "compliance"
    ADMIN = "admin"


STAFF_ROLES = frozenset({Role.OPERATOR, Role.ANALYST, Role.COMPLIANCE, Role.ADMIN})
# Roles that may read decrypted personal data of any customer (a customer sees only their own).
PROFILE_READERS = frozenset({Role.OPERATOR, Role.COMPLIANCE, Role.ADMIN})


class AuthError(Exception):
    """A missing, malformed, expired or unknown credential: HTTP 401."""


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    roles: frozenset[Role]
    customer_id: uuid.UUID | None = None
    app_name: str | None = None

    def has(self, *roles: Role) -> bool:
        return bool(self.roles.intersection(roles))

    @property
    def is_staff(self) -> bool:
        return bool(self.roles & STAFF_ROLES)

    @property
    def actor(self) -> str:
        """A pseudonymous label for audit fields: never a name or an identifier."""
        return self.subject


ANONYMOUS = Principal(subject="anonymous", roles=frozenset())


def issue_token(
    secret: bytes,
    *,
    role: Role,
    subject: str | None = None,
    customer_id: uuid.UUID | None = None,
    ttl: timedelta = timedelta(hours=1),
    issuer: str = "loyalgraph",
) -> str:
    if role is Role.CUSTOMER and customer_id is None:
        raise ValueError("a customer token needs a customer id")
    if role is Role.APP:
        raise ValueError("apps authenticate with API keys, not tokens")
    now = utcnow()
    claims: dict[str, object] = {
        "sub": str(customer_id) if role is Role.CUSTOMER else (subject or f"{role}-dev"),
        "role": role.value,
        "aud": AUDIENCE,
        "iss": issuer,
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def principal_from_token(secret: bytes, token: str, *, issuer: str = "loyalgraph") -> Principal:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=issuer,
            options={"require": ["exp", "sub", "role"]},
        )
    except jwt.PyJWTError as exc:
        raise AuthError(f"invalid token: {exc}") from None
    try:
        role = Role(claims["role"])
    except ValueError:
        raise AuthError("invalid token: unknown role") from None
    if role is Role.APP:
        raise AuthError("invalid token: apps use API keys")
    if role is Role.CUSTOMER:
        try:
            customer_id = uuid.UUID(str(claims["sub"]))
        except ValueError:
            raise AuthError("invalid token: bad subject") from None
        return Principal(
            subject=f"customer:{customer_id}", roles=frozenset({role}), customer_id=customer_id
        )
    return Principal(subject=f"staff:{claims['sub']}", roles=frozenset({role}))
