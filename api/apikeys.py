"""API keys for apps (web, mobile, POS). Only a SHA-256 of the key is stored."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta

from sqlalchemy import String, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col

from core.clock import utcnow
from core.db import UTCDateTime

KEY_PREFIX = "lg_"


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_key"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    app_name: str = Field(sa_type=String(100))
    key_hash: str = Field(sa_type=String(64), unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Requests per minute for this key; None: the service's default (LOYALGRAPH_RATE_LIMIT).
    rate_limit_per_minute: int | None = Field(default=None)
    replaced_by: uuid.UUID | None = Field(default=None)  # the key a rotation made


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


LAST_USED_PRECISION = timedelta(minutes=1)  # at most one write per key and minute


class ApiKeyError(ValueError):
    """No such key, or an operation that does not apply to it (one line for the CLI)."""


async def create_api_key(
    session: AsyncSession, *, app_name: str, rate_limit_per_minute: int | None = None
) -> tuple[ApiKey, str]:
    """A new key for an app; the plaintext is returned once and never stored."""
    if not app_name.strip():
        raise ValueError("the app name must not be empty")
    if rate_limit_per_minute is not None and rate_limit_per_minute < 1:
        raise ValueError("the rate limit must be at least 1 request per minute")
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(
        app_name=app_name.strip(),
        key_hash=_hash(plaintext),
        rate_limit_per_minute=rate_limit_per_minute,
    )
    session.add(row)
    await session.flush()
    return row, plaintext


async def find_api_key(session: AsyncSession, *, plaintext: str) -> ApiKey | None:
    row = (
        await session.execute(select(ApiKey).where(col(ApiKey.key_hash) == _hash(plaintext)))
    ).scalar_one_or_none()
    if row is None or row.revoked_at is not None:
        return None
    return row


async def list_api_keys(session: AsyncSession, *, include_revoked: bool = False) -> list[ApiKey]:
    query = select(ApiKey).order_by(col(ApiKey.app_name), col(ApiKey.created_at))
    if not include_revoked:
        query = query.where(col(ApiKey.revoked_at).is_(None))
    return list((await session.execute(query)).scalars())


async def _get(session: AsyncSession, key_id: str) -> ApiKey:
    try:
        parsed = uuid.UUID(key_id)
    except ValueError:
        raise ApiKeyError(
            f"{key_id!r} is not an API key id (see `loyalgraph apikey list`)"
        ) from None
    row = await session.get(ApiKey, parsed, with_for_update=True)
    if row is None:
        raise ApiKeyError(f"no API key with id {parsed}")
    return row


async def revoke_api_key(session: AsyncSession, *, key_id: str) -> ApiKey:
    """Revoke a key: the next request that carries it is refused (401)."""
    row = await _get(session, key_id)
    if row.revoked_at is not None:
        raise ApiKeyError(
            f"API key {row.id} was already revoked at {row.revoked_at:%Y-%m-%d %H:%MZ}"
        )
    row.revoked_at = utcnow()
    await session.flush()
    return row


async def rotate_api_key(session: AsyncSession, *, key_id: str) -> tuple[ApiKey, str]:
    """A new key for the same app with the same limit; the old one is revoked at once."""
    old = await revoke_api_key(session, key_id=key_id)
    new, plaintext = await create_api_key(
        session, app_name=old.app_name, rate_limit_per_minute=old.rate_limit_per_minute
    )
    old.replaced_by = new.id
    await session.flush()
    return new, plaintext


async def touch_last_used(
    session: AsyncSession, *, key_id: uuid.UUID, last_used_at: datetime | None
) -> bool:
    """Record that the key was used now, at most once per LAST_USED_PRECISION (True: written)."""
    now = utcnow()
    if last_used_at is not None and now - last_used_at < LAST_USED_PRECISION:
        return False
    await session.execute(update(ApiKey).where(col(ApiKey.id) == key_id).values(last_used_at=now))
    return True
