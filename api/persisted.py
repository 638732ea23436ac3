"""Automatic persisted queries (the APQ protocol mobile clients speak).

A client sends `extensions.persistedQuery.sha256Hash` without the query; when the server does
not know the hash it answers `PERSISTED_QUERY_NOT_FOUND` and the client retries once with the
query, which is checked against the hash and remembered. Memory is bounded (LRU).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any


class PersistedQueryError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class PersistedQueries:
    def __init__(self, maxsize: int = 1000) -> None:
        self.maxsize = maxsize
        self._queries: OrderedDict[str, str] = OrderedDict()

    def resolve(self, query: str | None, extensions: dict[str, Any] | None) -> str | None:
        """The query text to execute, registering it when the client sent query and hash."""
        persisted = (extensions or {}).get("persistedQuery")
        if persisted is None:
            return query
        if not isinstance(persisted, dict) or persisted.get("version") != 1:
            raise PersistedQueryError(
                "PERSISTED_QUERY_NOT_SUPPORTED", "only version 1 is supported"
            )
        digest = persisted.get("sha256Hash")
        if not isinstance(digest, str) or len(digest) != 64:
            raise PersistedQueryError("BAD_USER_INPUT", "sha256Hash must be 64 hex characters")
        digest = digest.lower()
        if query is None:
            known = self._queries.get(digest)
            if known is None:
                raise PersistedQueryError("PERSISTED_QUERY_NOT_FOUND", "PersistedQueryNotFound")
            self._queries.move_to_end(digest)
            return known
        if hashlib.sha256(query.encode()).hexdigest() != digest:
            raise PersistedQueryError(
                "BAD_USER_INPUT", "provided sha256Hash does not match the query"
            )
        self._queries[digest] = query
        self._queries.move_to_end(digest)
        while len(self._queries) > self.maxsize:
            self._queries.popitem(last=False)
        return query
