"""Seeding the demo for identity-resolution tests and knowing who is who in it."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

from rich.console import Console

import graph.demo
from core.settings import Settings
from graph.demo_world import World
from privacy.keys import KeyProvider

ANCHOR = datetime(2025, 6, 1, tzinfo=UTC)


async def seed_world(
    settings: Settings, provider: KeyProvider, monkeypatch: Any, *, people: int, seed: int
) -> World:
    """Seed the demo and return the world it was generated from (the ids are the rows' ids)."""
    captured: list[World] = []

    class Capturing(World):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            captured.append(self)

    monkeypatch.setattr(graph.demo, "World", Capturing)
    await graph.demo.seed_demo(
        settings,
        provider,
        customers=people,
        seed=seed,
        if_empty=False,
        console=Console(file=io.StringIO()),
        anchor=ANCHOR,
    )
    return captured[0]
