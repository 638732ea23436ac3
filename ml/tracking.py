"""What a training run leaves in MLflow: parameters, metrics, plots, the model, the decision.

One experiment per model kind (`loyalgraph-churn`, `loyalgraph-value`) with its artifacts under
the data directory, one registered model per kind, and the `champion` alias.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import mlflow.lightgbm
import numpy as np
from mlflow.models import infer_signature

from ml import plots
from ml.baselines import btyd_churn, btyd_value, rfm_code
from ml.fitting import Fitted
from ml.training import Evaluation, Prepared
from scoring.classic import DERIVED_FEATURES
from scoring.errors import ScoringError
from scoring.features import DESCRIPTIONS, FEATURE_VERSION, FEATURES
from scoring.kinds import CHAMPION, ModelKind
from scoring.registry import client, resolve_alias

MODEL_ARTIFACT = "model"


@dataclass(frozen=True, slots=True)
class TrainOutcome:
    kind: ModelKind
    run_id: str
    experiment: str
    model_name: str
    version: str
    promoted: bool
    reason: str
    evaluation: Evaluation
    best_iteration: int
    data_window: dict[str, Any] = field(default_factory=dict)  # as in data_window.json

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "run_id": self.run_id,
            "experiment": self.experiment,
            "model": self.model_name,
            "version": self.version,
            "promoted": self.promoted,
            "reason": self.reason,
            "best_iteration": self.best_iteration,
            "holdout": self.evaluation.table(),
            "data_window": self.data_window,
        }


def experiment_id(tracking_uri: str, kind: ModelKind, artifact_root: Path) -> str:
    """The kind's experiment, created with its artifacts under `artifact_root`."""
    name = f"loyalgraph-{kind.value}"
    mlflow_client = client(tracking_uri)
    found = mlflow_client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    location = (artifact_root / kind.value).resolve().as_uri()
    return str(mlflow_client.create_experiment(name, artifact_location=location))


def _params(prepared: Prepared, fitted: Fitted) -> dict[str, Any]:
    request, data = prepared.request, prepared.data
    return {
        "kind": request.kind.value,
        "scoring_cutoff": prepared.cutoff.isoformat(),
        "horizon_days": request.horizon_days,
        "train_cutoffs": len(data.train),
        "step_days": request.step_days,
        "validation_cutoff": data.plan.validation.isoformat(),
        "holdout_cutoff": data.plan.holdout.isoformat(),
        "include_influence": request.include_influence,
        "feature_version": FEATURE_VERSION,
        "features": len(fitted.model.features),
        "rows_train": data.train_rows,
        "rows_validation": data.validation.rows,
        "rows_holdout": data.holdout.rows,
        "customers_permitted": prepared.permitted,
        "best_iteration": fitted.best_iteration,
        **{f"lgb_{key}": value for key, value in fitted.params.items()},
    }


def _metrics(evaluation: Evaluation, fitted: Fitted) -> dict[str, float]:
    out = {f"holdout_{k}": v for k, v in evaluation.model.items()}
    out |= {f"validation_{k}": v for k, v in fitted.validation.items()}
    for name, scores in evaluation.baselines.items():
        out |= {f"{name}_{k}": v for k, v in scores.items()}
    if evaluation.champion is not None:
        out |= {f"champion_{k}": v for k, v in evaluation.champion.items()}
    return {key: value for key, value in out.items() if np.isfinite(value)}


def _figures(prepared: Prepared, fitted: Fitted, evaluation: Evaluation) -> None:
    kind, holdout = prepared.request.kind, prepared.data.holdout
    model = fitted.model
    predicted = model.predict(holdout.features)
    fit = evaluation.baseline_fit
    horizon = prepared.request.horizon_days
    code = rfm_code(holdout.features)
    figures = {"feature_importance.png": plots.importance(model)}
    figures["shap_summary.png"] = plots.shap_summary(model, holdout)
    if kind is ModelKind.CHURN:
        figures["calibration.png"] = plots.calibration(holdout.churned, predicted)
        rankings = {"lightgbm": predicted, "rfm": -code}
        if fit is not None:
            rankings["bgnbd"] = btyd_churn(fit, holdout, horizon)
        actual = holdout.churned.astype(np.float64)
        figures["lift.png"] = plots.lift(actual, rankings, what="churners")
    else:
        rankings = {"lightgbm": predicted, "rfm": code}
        if fit is not None:
            rankings["bgnbd_gg"] = btyd_value(fit, holdout, horizon)
        figures["lift.png"] = plots.lift(holdout.spend, rankings, what="spend")
    for name, figure in figures.items():
        mlflow.log_figure(figure, f"plots/{name}")
        plots.close(figure)


def log_training(
    prepared: Prepared,
    fitted: Fitted,
    evaluation: Evaluation,
    *,
    tracking_uri: str,
    artifact_root: Path,
) -> TrainOutcome:
    """One MLflow run with everything, the model registered, the alias moved if it won."""
    kind = prepared.request.kind
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    experiment = experiment_id(tracking_uri, kind, artifact_root)
    model = fitted.model
    stamp = prepared.cutoff.strftime("%Y%m%d")
    with mlflow.start_run(experiment_id=experiment, run_name=f"{kind.value}-{stamp}") as run:
        mlflow.log_params(_params(prepared, fitted))
        mlflow.log_metrics(_metrics(evaluation, fitted))
        gain = model.booster.feature_importance(importance_type="gain")
        groups = {feature.name: feature.group.value for feature in FEATURES}
        groups |= dict.fromkeys(DERIVED_FEATURES, "classic")
        mlflow.log_dict(
            {
                "feature_version": FEATURE_VERSION,
                "features": [
                    {
                        "name": name,
                        "group": groups[name],
                        "description": DESCRIPTIONS[name],
                        "gain": float(gain[position]),
                    }
                    for position, name in enumerate(model.features)
                ],
            },
            "features.json",
        )
        window = _window(prepared)
        mlflow.log_dict(window, "data_window.json")
        if model.classic is not None:
            mlflow.log_dict(model.classic.as_json(), "classic_params.json")
        mlflow.log_dict(evaluation.table(), "evaluation.json")
        decision = {"promoted": evaluation.decision.promote, "reason": evaluation.decision.reason}
        mlflow.log_dict(decision, "decision.json")
        mlflow.set_tags(
            {"loyalgraph.kind": kind.value, "loyalgraph.decision": json.dumps(decision)}
        )
        _figures(prepared, fitted, evaluation)
        # The input example is the holdout's column medians, not a customer's row: MLflow
        # artifacts are outside the reach of erasure.
        frame = model.frame(prepared.data.holdout.features)[list(model.features)]
        example = frame.median(skipna=True).to_frame().T.astype("float64")
        signature = infer_signature(frame.head(0), model.predict(example))
        info = mlflow.lightgbm.log_model(
            model.booster,
            name=MODEL_ARTIFACT,
            signature=signature,
            input_example=example,
            metadata=model.metadata(),
            registered_model_name=kind.registered_name,
        )
        run_id = run.info.run_id
    version = str(info.registered_model_version)
    registry = client(tracking_uri)
    promote, reason = evaluation.decision.promote, evaluation.decision.reason
    if promote and _champion_now(tracking_uri, kind) != evaluation.champion_version:
        # Another run moved the alias while this one trained: it was not compared with that.
        promote, reason = False, "the champion changed while this model trained; train again"
    registry.set_model_version_tag(kind.registered_name, version, "decision", reason)
    if promote:
        registry.set_registered_model_alias(kind.registered_name, CHAMPION, version)
    return TrainOutcome(
        kind=kind,
        run_id=run_id,
        experiment=experiment,
        model_name=kind.registered_name,
        version=version,
        promoted=promote,
        reason=reason,
        evaluation=evaluation,
        best_iteration=fitted.best_iteration,
        data_window=window,
    )


def _champion_now(tracking_uri: str, kind: ModelKind) -> str | None:
    try:
        return resolve_alias(tracking_uri, kind, CHAMPION).version
    except ScoringError:
        return None


def _window(prepared: Prepared) -> dict[str, Any]:
    data = prepared.data
    rows = [
        {
            "split": split,
            "cutoff": item.cutoff.isoformat(),
            "rows": item.rows,
            "churn_rate": float(item.churned.mean()) if item.rows else None,
            "mean_spend": float(item.spend.mean()) if item.rows else None,
        }
        for split, items in (
            ("train", data.train),
            ("validation", [data.validation]),
            ("holdout", [data.holdout]),
        )
        for item in items
    ]
    return {**data.plan.as_json(), "windows": rows, "loaded_until": prepared.cutoff.isoformat()}
