"""Per-request loaders of the review queue (one statement per batch of customers)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader

from graph.resolution import queries
from graph.resolution.models import DuplicateCandidate


class IdentityLoaders:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.possible_duplicates = DataLoader[uuid.UUID, list[DuplicateCandidate]](self._pending)

    async def _pending(self, owners: list[uuid.UUID]) -> list[list[DuplicateCandidate]]:
        found = await queries.pending_for(self.session, owners)
        return [found.get(owner, []) for owner in owners]
