"""Per-request DataLoaders of stored scores and influence (one statement per batch)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader

from scoring import queries
from scoring.kinds import ModelKind
from scoring.models import CustomerInfluence, CustomerScore


class ScoringLoaders:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.scores = DataLoader[uuid.UUID, dict[ModelKind, CustomerScore]](self._scores)
        self.influence = DataLoader[uuid.UUID, CustomerInfluence | None](self._influence)

    async def _scores(self, owners: list[uuid.UUID]) -> list[dict[ModelKind, CustomerScore]]:
        found = await queries.scores_for(self.session, owners)
        return [found.get(owner, {}) for owner in owners]

    async def _influence(self, owners: list[uuid.UUID]) -> list[CustomerInfluence | None]:
        found = await queries.influence_for(self.session, owners)
        return [found.get(owner) for owner in owners]
