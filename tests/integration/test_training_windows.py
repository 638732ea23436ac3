"""Training on the history there is: the demo's generated history, dated in the past, cut to
about 18 months before the training cutoff, trains churn and value with a 9-month horizon
(a plan of 3 horizons back would need 27 months and refuse). No label window reaches past the
cutoff, and the holdout's labels end at it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import create_engine, session_factory
from core.errors import DomainError
from core.settings import Settings
from ml.datasets import LEAD_DAYS
from ml.pipeline import train
from ml.training import TrainRequest
from scoring.errors import ScoringErrorCode
from scoring.kinds import ModelKind
from tests.scoring_fixtures import ANCHOR

HORIZON = 270  # nine months
# The demo's two years end at ANCHOR; a cutoff 6 months before it leaves 18 months of history.
CUTOFF = ANCHOR - timedelta(days=182)


@pytest.fixture
async def session(seeded_settings: Settings) -> AsyncIterator[AsyncSession]:
    engine = create_engine(seeded_settings.database_url)
    async with session_factory(engine)() as session:
        yield session
    await engine.dispose()


async def test_nine_month_horizon_trains_on_eighteen_months(seeded_settings, session):
    for kind in ModelKind:
        request = TrainRequest(kind=kind, cutoff=CUTOFF, horizon_days=HORIZON)

        outcome = await train(session, settings=seeded_settings, request=request)

        window = outcome.data_window
        first = datetime.fromisoformat(window["first_purchase"])
        assert timedelta(days=500) < CUTOFF - first < timedelta(days=560)  # ~18 months
        horizon = timedelta(days=HORIZON)
        holdout = datetime.fromisoformat(window["holdout_cutoff"])
        validation = datetime.fromisoformat(window["validation_cutoff"])
        trains = [datetime.fromisoformat(item) for item in window["train_cutoffs"]]
        assert holdout + horizon == CUTOFF  # the holdout's labels end at the cutoff
        assert validation + horizon <= CUTOFF and all(t + horizon <= CUTOFF for t in trains)
        assert all(t >= first + timedelta(days=LEAD_DAYS) for t in trains)
        assert max(trains) < validation < holdout
        assert window["labels_overlap"] is True and window["gap_days"] < HORIZON
        rows = {item["split"]: 0 for item in window["windows"]}
        for item in window["windows"]:
            rows[item["split"]] += item["rows"]
        assert len(trains) >= 2 and rows["train"] >= 100 and rows["holdout"] >= 50
        assert outcome.evaluation.model  # measured on the holdout like any run
        assert outcome.version == "1"


async def test_a_history_shorter_than_the_horizon_is_refused(seeded_settings, session):
    # 9 months of history cannot hold a 9-month horizon plus the features' lead-in.
    request = TrainRequest(
        kind=ModelKind.CHURN, cutoff=ANCHOR - timedelta(days=460), horizon_days=HORIZON
    )
    with pytest.raises(DomainError) as refused:
        await train(session, settings=seeded_settings, request=request)
    assert refused.value.code == ScoringErrorCode.EMPTY_TRAINING_WINDOW
    assert "too short" in refused.value.message
