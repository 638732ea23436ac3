"""CLI: `loyalgraph doctor`, where each piece of state lives and whether it is usable.

It only reads: it creates no folder, keyring or database, so it is safe to run from anywhere
(cron, `/`) to find out which data home a command would use."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import typer

from api.cli_common import describe_database, load_settings, migration_state
from core.settings import Settings


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)


def _home_source() -> str:
    if os.environ.get("LOYALGRAPH_HOME"):
        return "LOYALGRAPH_HOME"
    return "default: the checkout's var/ or ~/.local/share/loyalgraph"


def _database(settings: Settings) -> tuple[bool, str]:
    where = describe_database(settings.database_url)
    revision, head = asyncio.run(migration_state(settings.database_url))
    if revision is None:
        return False, f"{where}: missing, unreachable or not migrated (run loyalgraph migrate)"
    if revision != head:
        return False, f"{where}: at migration {revision}, the code is at {head} (migrate)"
    return True, f"{where}: reachable, at the latest migration ({head})"


def _keyring(settings: Settings) -> tuple[bool, str]:
    from privacy.keys import KeyProviderError, LocalKeyring
    from privacy.signing import fingerprint, public_key_bytes

    path = settings.keyring_path
    if not path.exists():
        return False, f"{path}: missing (created by the first command that writes)"
    try:
        keyring = LocalKeyring(path, create=False)
        signing = fingerprint(public_key_bytes(keyring))[:16]
        return True, f"{path}: readable, active root {keyring.active_root_key_id()}, " + (
            f"signing key {signing}"
        )
    except KeyProviderError as error:
        return False, str(error)


async def _unwrap_one_per_root(settings: Settings) -> tuple[int, list[str]]:
    """(roots checked, problems): one live data key per root id must unwrap with the keyring."""
    from sqlalchemy import select
    from sqlmodel import col

    from core.db import create_engine
    from privacy.crypto import wrap_aad
    from privacy.keys import LocalKeyring
    from privacy.models import DataKey

    keyring = LocalKeyring(settings.keyring_path, create=False)
    engine = create_engine(settings.database_url)
    problems = []
    try:
        async with engine.connect() as connection:
            live = col(DataKey.wrapped_key).is_not(None)
            roots = list(
                await connection.scalars(select(col(DataKey.root_key_id)).where(live).distinct())
            )
            rows: list[Any] = []
            for root in roots:
                first = await connection.execute(
                    select(DataKey).where(live, col(DataKey.root_key_id) == root).limit(1)
                )
                rows.extend(first.all())
        for row in rows:
            try:
                keyring.unwrap(
                    row.root_key_id, row.wrapped_key, wrap_aad(row.id, row.subject_id, row.version)
                )
            except Exception as error:
                problems.append(f"root key {row.root_key_id}: {type(error).__name__}")
    finally:
        await engine.dispose()
    return len(roots), problems


def _consistency(settings: Settings) -> tuple[bool, str]:
    revision, head = asyncio.run(migration_state(settings.database_url))
    if revision != head or not settings.keyring_path.exists():
        return False, "not checked (the database or the keyring is not usable)"
    roots, problems = asyncio.run(_unwrap_one_per_root(settings))
    if problems:
        return False, "the keyring cannot open the database's data keys: " + "; ".join(problems)
    return True, f"the keyring opens the database's data keys ({roots} root keys in use)"


def _mlflow(settings: Settings) -> tuple[bool, str]:
    from api.cli_mlflow import pinned_version, store_revision

    uri = settings.mlflow_tracking_uri
    revision = store_revision(uri)
    if revision is None:
        return True, f"{uri}: no store yet (created by `loyalgraph train`)"
    return True, f"{uri}: schema {revision}, client mlflow {pinned_version()}"


def _exports(settings: Settings) -> tuple[bool, str]:
    folder = settings.exports_dir
    if not folder.is_dir():
        return True, f"{folder}: none yet"
    count = sum(1 for p in folder.iterdir() if p.is_file() and not p.name.endswith(".sig"))
    return True, f"{folder}: {count} exports"


def doctor() -> None:
    """Print where the database, keyring, MLflow store and exports live, and whether each is
    reachable and consistent; exit 1 if one is not."""
    settings = load_settings(read_only=True)
    typer.echo(f"data home  {settings.home}  ({_home_source()})")
    healthy = True
    for label, probe in (
        ("database", _database),
        ("keyring", _keyring),
        ("keys+db", _consistency),
        ("mlflow", _mlflow),
        ("exports", _exports),
    ):
        ok, line = probe(settings)
        healthy = healthy and ok
        typer.echo(f"{label:<10} {'ok ' if ok else 'BAD'} {line}")
    if not healthy:
        raise typer.Exit(1)
