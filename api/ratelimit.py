"""Requests per minute per API key: a fixed one-minute window per key.

Shared by every process through Redis when LOYALGRAPH_REDIS_URL is set (INCR and EXPIRE on one
key per API key and minute), else counted in this process's memory. A request over the limit is
answered 429 with `Retry-After` (the seconds until the window ends)."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Protocol

WINDOW_SECONDS = 60


class RateLimiter(Protocol):
    async def hit(self, key_id: str, limit: int) -> int | None:
        """Count one request; None if allowed, else the seconds to wait."""
        ...

    async def close(self) -> None: ...


def _window(now: float) -> tuple[int, int]:
    """(this window's number, whole seconds until it ends, at least 1)."""
    window = int(now // WINDOW_SECONDS)
    return window, max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))


class MemoryRateLimiter:
    def __init__(self) -> None:
        self._counts: dict[str, tuple[int, int]] = {}
        self._lock = asyncio.Lock()

    async def hit(self, key_id: str, limit: int) -> int | None:
        window, retry_after = _window(time.time())
        async with self._lock:
            current_window, count = self._counts.get(key_id, (window, 0))
            count = count + 1 if current_window == window else 1
            self._counts[key_id] = (window, count)
        return None if count <= limit else retry_after

    async def close(self) -> None:
        self._counts.clear()


class RedisRateLimiter:
    def __init__(self, url: str, prefix: str = "loyalgraph:ratelimit") -> None:
        from redis.asyncio import Redis

        self._redis = Redis.from_url(url)
        self._prefix = prefix

    async def hit(self, key_id: str, limit: int) -> int | None:
        window, retry_after = _window(time.time())
        name = f"{self._prefix}:{key_id}:{window}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            pipe.expire(name, WINDOW_SECONDS * 2)
            count, _ = await pipe.execute()
        return None if int(count) <= limit else retry_after

    async def close(self) -> None:
        await self._redis.aclose()


def rate_limiter(redis_url: str | None) -> RateLimiter:
    return RedisRateLimiter(redis_url) if redis_url else MemoryRateLimiter()
