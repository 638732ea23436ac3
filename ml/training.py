"""`loyalgraph train churn|value`: prepare the windows, fit, compare, log to MLflow, promote.

Everything that can refuse the request (a cutoff in the future, a bad horizon, a history too
short for the windows) is checked before the first MLflow call, so a refused run leaves the
tracking store and the registry as they were. A model is registered on every completed run;
the `champion` alias moves only when the new model beats, on the same holdout rows, both the
current champion and every baseline on the primary metric (churn AUC, value normalised Gini).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from ml.baselines import evaluate_baselines
from ml.datasets import (
    DEFAULT_STEP_DAYS,
    DEFAULT_TRAIN_CUTOFFS,
    CutoffPlan,
    Datasets,
    build_datasets,
    first_purchase,
    plan_cutoffs,
)
from ml.fitting import MAX_ROUNDS, PRIMARY_METRIC, Fitted, evaluate, feature_list, fit
from scoring.classic import DERIVED_FEATURES, ClassicParams, fit_classic
from scoring.history import History, load_history
from scoring.kinds import DEFAULT_HORIZON_DAYS, ModelKind
from scoring.model import ScoringModel
from scoring.validation import check_training, resolve_cutoff


@dataclass(frozen=True, slots=True)
class TrainRequest:
    kind: ModelKind
    cutoff: datetime | None = None  # default: now
    horizon_days: int = DEFAULT_HORIZON_DAYS
    train_cutoffs: int = DEFAULT_TRAIN_CUTOFFS
    step_days: int = DEFAULT_STEP_DAYS
    include_influence: bool = True
    params: Mapping[str, Any] = field(default_factory=dict)
    max_rounds: int = MAX_ROUNDS


def validate(request: TrainRequest, now: datetime | None = None) -> datetime:
    check_training(
        horizon_days=request.horizon_days,
        train_cutoffs=request.train_cutoffs,
        step_days=request.step_days,
        max_rounds=request.max_rounds,
    )
    return resolve_cutoff(request.cutoff, now)


@dataclass(frozen=True, slots=True)
class Prepared:
    request: TrainRequest
    cutoff: datetime
    history: History
    data: Datasets
    permitted: int

    @property
    def plan(self) -> CutoffPlan:
        return self.data.plan


Progress = Callable[[str, int, int], None]  # what is being done, how far of how much


async def prepare(
    session: AsyncSession,
    *,
    request: TrainRequest,
    currency: str,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> Prepared:
    """Validate, load the history before the cutoff and build the windows (no MLflow yet)."""
    cutoff = validate(request, now)
    if progress is not None:
        progress("loading the history", 0, 1)
    history = await load_history(session, until=cutoff, currency=currency)
    allowed = history.profiled
    plan = plan_cutoffs(
        cutoff,
        request.horizon_days,
        train_cutoffs=request.train_cutoffs,
        step_days=request.step_days,
        first_purchase=first_purchase(history),
    )
    data = build_datasets(history, plan, allowed, progress)
    return Prepared(request, cutoff, history, data, int(allowed.sum()))


@dataclass(frozen=True, slots=True)
class Decision:
    promote: bool
    reason: str


@dataclass(frozen=True, slots=True)
class Evaluation:
    kind: ModelKind
    model: dict[str, float]
    baselines: dict[str, dict[str, float]]
    champion: dict[str, float] | None
    champion_version: str | None
    decision: Decision
    baseline_fit: ClassicParams | None = None  # BG/NBD + Gamma-Gamma fitted on the holdout

    def table(self) -> dict[str, dict[str, float]]:
        rows = {"lightgbm": self.model, **self.baselines}
        if self.champion is not None:
            rows[f"champion v{self.champion_version}"] = self.champion
        return rows


def decide(
    kind: ModelKind,
    model: Mapping[str, float],
    baselines: Mapping[str, Mapping[str, float]],
    champion: Mapping[str, float] | None,
    champion_version: str | None,
    *,
    incomparable: str | None = None,
) -> Decision:
    """Promote only a model that beats the champion and every baseline on the primary metric."""
    metric = PRIMARY_METRIC[kind]
    mine = model[metric]
    for name, scores in baselines.items():
        theirs = scores.get(metric)
        if theirs is not None and not mine > theirs:
            return Decision(False, f"{metric} {mine:.4f} does not beat {name} ({theirs:.4f})")
    if champion_version is not None and incomparable is not None:
        return Decision(
            False,
            f"champion v{champion_version} {incomparable}; move the alias by hand if this "
            "model should replace it",
        )
    if champion is not None:
        theirs = champion[metric]
        if not mine > theirs:
            return Decision(
                False,
                f"{metric} {mine:.4f} does not beat champion v{champion_version} ({theirs:.4f})",
            )
        return Decision(
            True, f"{metric} {mine:.4f} beats champion v{champion_version} ({theirs:.4f})"
        )
    return Decision(True, f"{metric} {mine:.4f} beats every baseline; no champion yet")


def compare(prepared: Prepared, fitted: Fitted, champion: ScoringModel | None) -> Evaluation:
    """The candidate, the champion and the baselines, all on the same holdout rows."""
    kind, holdout = prepared.request.kind, prepared.data.holdout
    metrics = evaluate(fitted.model, holdout)
    classic = fit_classic(holdout.features)
    relevant = evaluate_baselines(holdout, prepared.request.horizon_days, kind, classic)
    champion_metrics: dict[str, float] | None = None
    incomparable: str | None = None
    if champion is not None:
        known = set(holdout.features.columns) | set(DERIVED_FEATURES)
        if not set(champion.features) <= known:
            incomparable = "needs features this code does not compute"
        elif champion.horizon_days != prepared.request.horizon_days:
            incomparable = f"predicts a {champion.horizon_days}-day horizon, not this one"
        else:
            champion_metrics = evaluate(champion, holdout)
    decision = decide(
        kind,
        metrics,
        relevant,
        champion_metrics,
        None if champion is None else champion.version,
        incomparable=incomparable,
    )
    return Evaluation(
        kind=kind,
        model=metrics,
        baselines=relevant,
        champion=champion_metrics,
        champion_version=None if champion is None else champion.version,
        decision=decision,
        baseline_fit=classic,
    )


def fit_candidate(prepared: Prepared, progress: Progress | None = None) -> Fitted:
    request = prepared.request
    return fit(
        request.kind,
        prepared.data,
        features=feature_list(include_influence=request.include_influence),
        params=dict(request.params),
        max_rounds=request.max_rounds,
        progress=progress,
    )
