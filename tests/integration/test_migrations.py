"""Models and migrations agree, on SQLite and PostgreSQL, and the migration can be undone."""

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from core.db import create_engine
from migrations.models import metadata
from migrations.runner import alembic_config


async def _diff(url: str) -> list[object]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}), metadata
                )
            )
    finally:
        await engine.dispose()


async def test_models_and_migrations_agree(database_url):
    assert await _diff(database_url) == []


def test_downgrade_to_base_and_back(database_url):
    config = alembic_config(database_url)
    command.downgrade(config, "base")
    command.upgrade(config, "head")
