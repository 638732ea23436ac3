"""A unit of work is all or nothing, savepoints included (SQLite's driver gets this wrong
unless we issue BEGIN ourselves)."""

import pytest
from sqlalchemy import func, select

from core.db import transaction
from graph.enums import Channel
from graph.models import Store


class Boom(Exception):
    pass


async def test_rollback_undoes_a_released_savepoint(sessions):
    with pytest.raises(Boom):
        async with transaction(sessions) as session:
            async with session.begin_nested():
                session.add(Store(code="MSK-999", name="Test", city="Moscow", channel=Channel.POS))
                await session.flush()
            raise Boom
    async with sessions() as session:
        assert (await session.execute(select(func.count()).select_from(Store))).scalar_one() == 0
