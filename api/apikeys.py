"""API keys for apps (web, mobile, POS). Only a SHA-256 of the key is stored."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime

from sqlalchemy import String, select
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


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def create_api_key(session: AsyncSession, *, app_name: str) -> tuple[ApiKey, str]:
    """A new key for an app; the plaintext is returned once and never stored."""
    if not app_name.strip():
        raise ValueError("the app name must not be empty")
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(app_name=app_name.strip(), key_hash=_hash(plaintext))
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
