"""A scoring model as serving uses it: a LightGBM booster, its feature list and calibration.

Training evaluates a candidate through this very class, so the holdout numbers are those of
the code that serves. Contributions are LightGBM's `pred_contrib` (exact TreeSHAP values) on
the model's raw scale, times the calibration slope: log-odds of churn, and log of expected
spend for value (a Tweedie model with a log link). With the intercept they add up to the
calibrated log-odds or log-spend.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from scoring.classic import DERIVED_FEATURES, ClassicParams, derive
from scoring.history import Floats
from scoring.kinds import ModelKind

METADATA_KEY = "loyalgraph"


@dataclass(frozen=True, slots=True)
class Reason:
    feature: str
    contribution: float
    value: float | None


@dataclass(frozen=True, slots=True)
class Explained:
    predictions: Floats
    reasons: list[list[Reason]]


@dataclass(frozen=True, slots=True)
class ScoringModel:
    kind: ModelKind
    name: str
    version: str
    booster: lgb.Booster
    features: tuple[str, ...]
    horizon_days: int
    # (slope, intercept) on the raw score, fitted on a later time slice than the training rows:
    # Platt scaling of the log-odds for churn, a level correction of the log-spend for value.
    calibration: tuple[float, float] | None = None
    trained_cutoff: str | None = None
    run_id: str | None = None
    # BG/NBD and Gamma-Gamma parameters behind the derived features (scoring.classic).
    classic: ClassicParams | None = None
    # One prediction at a time per booster: scoring runs in worker threads, and LightGBM's
    # predict set-up writes to the booster (lightgbm-org/LightGBM#6142).
    _turn: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    def frame(self, features: pd.DataFrame) -> pd.DataFrame:
        """The feature frame with the derived columns this model reads."""
        wanted = [name for name in DERIVED_FEATURES if name in self.features]
        if not wanted or all(name in features.columns for name in wanted):
            return features
        return derive(features, self.classic)

    def matrix(self, frame: pd.DataFrame) -> np.ndarray[Any, np.dtype[np.float64]]:
        frame = self.frame(frame)
        missing = [name for name in self.features if name not in frame.columns]
        if missing:
            raise KeyError(f"features missing from the frame: {', '.join(missing)}")
        return frame[list(self.features)].to_numpy(dtype=np.float64)

    def _from_raw(self, raw: Floats) -> Floats:
        slope, intercept = self.calibration or (1.0, 0.0)
        link = slope * raw + intercept
        if self.kind is ModelKind.CHURN:
            out: Floats = 1.0 / (1.0 + np.exp(-link))
            return out
        spend: Floats = np.exp(link)
        return spend

    def raw(self, frame: pd.DataFrame) -> Floats:
        matrix = self.matrix(frame)
        with self._turn:
            raw: Floats = np.asarray(self.booster.predict(matrix, raw_score=True), dtype=np.float64)
        return raw

    def predict(self, frame: pd.DataFrame) -> Floats:
        """Calibrated churn probabilities, or expected spend in major units."""
        return self._from_raw(self.raw(frame))

    def explain(self, frame: pd.DataFrame, *, top: int = 5) -> Explained:
        """Predictions and, per row, the `top` features that moved it most."""
        matrix = self.matrix(frame)
        with self._turn:
            contrib = np.asarray(self.booster.predict(matrix, pred_contrib=True), dtype=np.float64)
        scale = self.calibration[0] if self.calibration else 1.0
        raw = contrib.sum(axis=1)
        parts = contrib[:, :-1] * scale
        order = np.argsort(-np.abs(parts), axis=1, kind="stable")[:, :top]
        reasons = [
            [
                Reason(
                    feature=self.features[j],
                    contribution=float(parts[i, j]),
                    value=None if math.isnan(matrix[i, j]) else float(matrix[i, j]),
                )
                for j in row
            ]
            for i, row in enumerate(order)
        ]
        return Explained(predictions=self._from_raw(raw), reasons=reasons)

    def metadata(self) -> dict[str, Any]:
        """What the MLflow model carries besides the booster (read back by `from_metadata`)."""
        return {
            METADATA_KEY: {
                "kind": self.kind.value,
                "features": list(self.features),
                "horizon_days": self.horizon_days,
                "calibration": None if self.calibration is None else list(self.calibration),
                "trained_cutoff": self.trained_cutoff,
                "classic": None if self.classic is None else self.classic.as_json(),
            }
        }

    @classmethod
    def from_metadata(
        cls,
        booster: lgb.Booster,
        metadata: dict[str, Any] | None,
        *,
        name: str,
        version: str,
        run_id: str | None,
    ) -> ScoringModel:
        info = (metadata or {}).get(METADATA_KEY)
        if not isinstance(info, dict):
            raise ValueError(f"{name} version {version} is not a loyalgraph scoring model")
        calibration = info.get("calibration")
        classic = info.get("classic")
        return cls(
            kind=ModelKind(info["kind"]),
            name=name,
            version=version,
            booster=booster,
            features=tuple(info["features"]),
            horizon_days=int(info["horizon_days"]),
            calibration=None if calibration is None else (calibration[0], calibration[1]),
            trained_cutoff=info.get("trained_cutoff"),
            run_id=run_id,
            classic=None if classic is None else ClassicParams.from_json(classic),
        )
