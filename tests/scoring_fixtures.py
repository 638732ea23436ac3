"""Fixtures of the scoring tests: a seeded demo retailer per backend (built once, copied per
test) and a real MLflow store with champions trained on it (built once, copied per test).

The demo's two years end at ANCHOR; scoring and training run as of ANCHOR, so the numbers do
not move with the wall clock.
"""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console

from core.db import create_engine, session_factory
from core.settings import Settings
from graph.demo import seed_demo
from loyalty.demo import seed_demo_ledger
from privacy.keys import LocalKeyring

ANCHOR = datetime(2026, 6, 1, tzinfo=UTC)
PEOPLE = 2000
SEED = 7


@dataclass(frozen=True, slots=True)
class Seeded:
    """A seeded database to copy: a SQLite file or a PostgreSQL template, and its keyring."""

    backend: str
    location: str  # file path (sqlite) or database name (postgresql)
    keyring: Path


def _settings(home: Path, database_url: str, keyring: Path, mlflow: Path | None = None) -> Settings:
    env = {
        "LOYALGRAPH_HOME": str(home),
        "LOYALGRAPH_DATABASE_URL": database_url,
        "LOYALGRAPH_KEYRING": str(keyring),
        "LOYALGRAPH_MLFLOW_TRACKING_URI": f"sqlite:///{(mlflow or home) / 'mlflow.db'}",
        "LOYALGRAPH_MLFLOW_ARTIFACTS": str((mlflow or home) / "mlartifacts"),
    }
    settings = Settings.from_env(env)
    settings.ensure_dirs()
    return settings


def _seed(settings: Settings) -> None:
    provider = LocalKeyring(settings.keyring_path)
    console = Console(file=io.StringIO())
    asyncio.run(
        seed_demo(
            settings, provider, customers=PEOPLE, seed=SEED, if_empty=False, console=console,
            anchor=ANCHOR,
        )
    )  # fmt: skip
    asyncio.run(seed_demo_ledger(settings, provider, seed=SEED, now=ANCHOR))


@pytest.fixture(scope="session")
def seeded_sqlite(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    folder = tmp_path_factory.mktemp("seeded-sqlite")
    target = folder / "seeded.db"
    shutil.copyfile(sqlite_template, target)
    keyring = folder / "keyring.json"
    _seed(_settings(folder, f"sqlite:///{target}", keyring))
    return Seeded("sqlite", str(target), keyring)


@pytest.fixture(scope="session")
def seeded_pg(pg_template: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    from tests.conftest import _pg_admin, _pg_parts

    name = f"lg_seeded_{os.getpid()}"
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}"'))
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"'))
    folder = tmp_path_factory.mktemp("seeded-pg")
    keyring = folder / "keyring.json"
    _seed(_settings(folder, _pg_parts(name)[1], keyring))
    yield Seeded("postgresql", name, keyring)
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def seeded_settings(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Settings]:
    """A fresh copy of the seeded demo for this test, with an empty MLflow store."""
    from tests.conftest import _pg_admin, _pg_parts

    home = tmp_path / "home"
    home.mkdir()
    source: Seeded = request.getfixturevalue(f"seeded_{'sqlite' if backend == 'sqlite' else 'pg'}")
    keyring = home / "keyring.json"
    shutil.copyfile(source.keyring, keyring)
    if backend == "sqlite":
        target = home / "loyalgraph.db"
        shutil.copyfile(source.location, target)
        yield _settings(home, f"sqlite:///{target}", keyring)
        return
    name = f"lg_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{source.location}"'))
    yield _settings(home, _pg_parts(name)[1], keyring)
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def trained_store(seeded_sqlite: Seeded, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow store (SQLite file and artifacts) with a churn and a value champion trained
    on the seeded demo as of ANCHOR."""
    from ml.pipeline import train
    from ml.training import TrainRequest
    from scoring.kinds import ModelKind

    folder = tmp_path_factory.mktemp("mlflow")
    work = tmp_path_factory.mktemp("train-db")
    database = work / "loyalgraph.db"
    shutil.copyfile(seeded_sqlite.location, database)
    settings = _settings(work, f"sqlite:///{database}", seeded_sqlite.keyring, mlflow=folder)

    async def run() -> None:
        engine = create_engine(settings.database_url)
        try:
            async with session_factory(engine)() as session:
                for kind in ModelKind:
                    outcome = await train(
                        session, settings=settings, request=TrainRequest(kind=kind, cutoff=ANCHOR)
                    )
                    assert outcome.promoted, outcome.reason
        finally:
            await engine.dispose()

    asyncio.run(run())
    return folder


def with_champions(settings: Settings, store: Path, tmp_path: Path) -> Settings:
    """`settings` pointing at a private copy of the trained store's tracking database (the
    artifacts stay where the store wrote them, read-only for the copies)."""
    copy = tmp_path / "mlflow-copy"
    copy.mkdir(exist_ok=True)
    shutil.copyfile(store / "mlflow.db", copy / "mlflow.db")
    return replace(settings, mlflow_tracking_uri=f"sqlite:///{copy / 'mlflow.db'}")
