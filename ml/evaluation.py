"""`loyalgraph evaluate` and `loyalgraph models`: a registered version on any holdout, and the
registry at a glance."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.settings import Settings
from ml.baselines import evaluate_baselines
from ml.datasets import MIN_ROWS, window
from ml.fitting import evaluate, ranking_metrics
from scoring.classic import DERIVED_FEATURES, fit_classic
from scoring.errors import ScoringErrorCode, scoring_error
from scoring.history import load_history
from scoring.kinds import ModelKind
from scoring.registry import client, load_alias
from scoring.validation import check_horizon, resolve_cutoff


async def evaluate_alias(
    session: AsyncSession,
    *,
    settings: Settings,
    kind: ModelKind,
    alias: str,
    cutoff: datetime | None,
    horizon_days: int | None = None,
    relabel: bool = False,
) -> dict[str, Any]:
    """The aliased model and the baselines on the customers of the holdout ending at `cutoff`
    (features at cutoff - horizon, labels from the horizon after it).

    The horizon is the model's (None). Another horizon is refused (INVALID_HORIZON): the
    model's probabilities and amounts are for its own horizon, so log loss, Brier and bias
    against other labels mean nothing. With `relabel` the holdout is labelled for the horizon
    asked and the model is measured by its ranking alone (AUC and lift; Gini, Spearman and
    capture), the baselines in full for that horizon."""
    if horizon_days is not None:
        check_horizon(horizon_days)
    end = resolve_cutoff(cutoff)
    model = load_alias(settings.mlflow_tracking_uri, kind, alias)
    horizon_days = model.horizon_days if horizon_days is None else horizon_days
    relabelled = horizon_days != model.horizon_days
    if relabelled and not relabel:
        raise scoring_error(
            ScoringErrorCode.INVALID_HORIZON,
            f"{model.name} v{model.version} predicts a {model.horizon_days}-day horizon, not "
            f"{horizon_days} days: evaluate it on its own horizon, or relabel the holdout for "
            f"{horizon_days} days explicitly (ranking metrics only)",
            "horizon",
        )
    history = await load_history(session, until=end, currency=settings.currency)
    allowed = history.profiled
    start = end - timedelta(days=horizon_days)
    holdout = window(history, start, horizon_days, allowed)
    if holdout.rows < MIN_ROWS:
        raise scoring_error(
            ScoringErrorCode.EMPTY_TRAINING_WINDOW,
            f"the holdout has {holdout.rows} customers (at least {MIN_ROWS} needed)",
            "cutoff",
        )
    missing = set(model.features) - set(holdout.features.columns) - set(DERIVED_FEATURES)
    if missing:
        raise scoring_error(
            ScoringErrorCode.MODEL_INCOMPATIBLE,
            f"{model.name} v{model.version} needs features this code does not compute",
            "alias",
        )
    baselines = evaluate_baselines(holdout, horizon_days, kind, fit_classic(holdout.features))
    mine = ranking_metrics(model, holdout) if relabelled else evaluate(model, holdout)
    return {
        "model": model.name,
        "version": model.version,
        "alias": alias,
        "holdout_cutoff": start.isoformat(),
        "horizon_days": horizon_days,
        "model_horizon_days": model.horizon_days,
        "relabelled": relabelled,
        "rows": holdout.rows,
        "metrics": {f"{model.name} v{model.version}": mine, **baselines},
    }


def registered_versions(tracking_uri: str) -> list[dict[str, Any]]:
    registry = client(tracking_uri)
    rows: list[dict[str, Any]] = []
    for kind in ModelKind:
        versions = registry.search_model_versions(f"name = '{kind.registered_name}'")
        if not versions:
            continue
        aliases: dict[str, list[str]] = {}
        for alias, number in registry.get_registered_model(kind.registered_name).aliases.items():
            aliases.setdefault(str(number), []).append(alias)
        for version in sorted(versions, key=lambda item: int(item.version)):
            rows.append(
                {
                    "model": kind.registered_name,
                    "version": str(version.version),
                    "aliases": sorted(aliases.get(str(version.version), [])),
                    "run_id": version.run_id,
                    "decision": (version.tags or {}).get("decision"),
                    "created": version.creation_timestamp,
                }
            )
    return rows
