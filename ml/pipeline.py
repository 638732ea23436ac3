"""Train, evaluate and score end to end: what the CLI commands call."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from core.settings import Settings
from ml.tracking import TrainOutcome, log_training
from ml.training import Progress, TrainRequest, compare, fit_candidate, prepare
from scoring.errors import ScoringError, ScoringErrorCode
from scoring.kinds import CHAMPION, ModelKind
from scoring.model import ScoringModel
from scoring.registry import load_alias


def current_champion(tracking_uri: str, kind: ModelKind) -> ScoringModel | None:
    try:
        return load_alias(tracking_uri, kind, CHAMPION)
    except ScoringError as error:
        if error.code is ScoringErrorCode.UNKNOWN_MODEL_ALIAS:
            return None
        raise


async def train(
    session: AsyncSession,
    *,
    settings: Settings,
    request: TrainRequest,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> TrainOutcome:
    """Validate and prepare (nothing in MLflow changes if this refuses), fit, compare with the
    champion and the baselines on the holdout, log the run, register, promote if it won.
    `progress(what, done, total)` hears of each step (the CLI's progress bar)."""

    def step(what: str) -> None:
        if progress is not None:
            progress(what, 0, 0)

    prepared = await prepare(
        session, request=request, currency=settings.currency, now=now, progress=progress
    )
    fitted = fit_candidate(prepared, progress)
    step("comparing with the champion and the baselines on the holdout")
    champion = current_champion(settings.mlflow_tracking_uri, request.kind)
    evaluation = compare(prepared, fitted, champion)
    step("logging the run to MLflow")
    return log_training(
        prepared,
        fitted,
        evaluation,
        tracking_uri=settings.mlflow_tracking_uri,
        artifact_root=settings.mlflow_artifacts,
    )
