"""Models by alias from the MLflow registry, and the champions a serving process keeps loaded.

MLflow is imported inside these functions, never at module import: the API imports this
module, and its request path only reads `Champions.get`, an attribute lookup. Loading and
watching the alias run in a worker thread (`Champions.watch`).
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scoring.errors import ScoringError, ScoringErrorCode, scoring_error
from scoring.kinds import CHAMPION, ModelKind
from scoring.model import ScoringModel

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger("loyalgraph.scoring")
MISSING = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"})


def client(tracking_uri: str) -> MlflowClient:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


@dataclass(frozen=True, slots=True)
class AliasTarget:
    name: str
    version: str
    run_id: str | None


def resolve_alias(tracking_uri: str, kind: ModelKind, alias: str = CHAMPION) -> AliasTarget:
    """The version an alias points at; UNKNOWN_MODEL_ALIAS when there is none."""
    from mlflow.exceptions import MlflowException

    name = kind.registered_name
    try:
        version = client(tracking_uri).get_model_version_by_alias(name, alias)
    except MlflowException as error:
        # Only "no such model / no such alias" means there is none; a locked or unreachable
        # store must not pass for "no champion yet" (a candidate would be promoted unchecked).
        if error.error_code not in MISSING:
            raise
        raise scoring_error(
            ScoringErrorCode.UNKNOWN_MODEL_ALIAS,
            f"no version of model {name} has the alias {alias!r}",
            "alias",
        ) from None
    return AliasTarget(name=name, version=str(version.version), run_id=version.run_id)


def load_version(tracking_uri: str, kind: ModelKind, version: str) -> ScoringModel:
    """One registered version, with its feature list and calibration."""
    import mlflow.artifacts
    import mlflow.lightgbm
    from mlflow.models import Model

    name = kind.registered_name
    registry = client(tracking_uri)
    version_info = registry.get_model_version(name, version)
    # The artifacts' own location, resolved by our client: a `models:/` URI would be resolved
    # through MLflow's global registry URI, whatever store this function was given.
    source = registry.get_model_version_download_uri(name, version)
    with tempfile.TemporaryDirectory(prefix="loyalgraph-model-") as folder:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=source, tracking_uri=tracking_uri, dst_path=folder
        )
        booster = mlflow.lightgbm.load_model(local)  # read into memory: the copy can go
        metadata = Model.load(local).metadata
    return ScoringModel.from_metadata(
        booster,
        metadata,
        name=name,
        version=str(version),
        run_id=version_info.run_id,
    )


def load_alias(tracking_uri: str, kind: ModelKind, alias: str = CHAMPION) -> ScoringModel:
    target = resolve_alias(tracking_uri, kind, alias)
    return load_version(tracking_uri, kind, target.version)


class Champions:
    """The champion of each kind, loaded once and again when its alias moves.

    `get` is what a request calls: no I/O, no MLflow. `refresh` (blocking) resolves the aliases
    and loads a version it has not loaded yet; an alias that was removed stops the serving of
    its kind; a store that cannot be read keeps the model already loaded.
    """

    def __init__(self, tracking_uri: str, alias: str = CHAMPION) -> None:
        self.tracking_uri = tracking_uri
        self.alias = alias
        self._models: dict[ModelKind, ScoringModel] = {}
        self._lock = threading.Lock()

    def get(self, kind: ModelKind) -> ScoringModel | None:
        return self._models.get(kind)

    def refresh(self) -> dict[ModelKind, str | None]:
        """Load what the aliases point at now; returns the version held per kind."""
        with self._lock:
            for kind in ModelKind:
                try:
                    target = resolve_alias(self.tracking_uri, kind, self.alias)
                except ScoringError:  # no champion of this kind (any more)
                    if kind in self._models:
                        log.info("%s has no @%s any more: not serving it", kind.value, self.alias)
                        self._models = {k: m for k, m in self._models.items() if k is not kind}
                    continue
                except Exception:
                    log.exception("could not resolve the %s alias of %s", self.alias, kind.value)
                    continue
                held = self._models.get(kind)
                if held is not None and held.version == target.version:
                    continue
                try:
                    model = load_version(self.tracking_uri, kind, target.version)
                except Exception:
                    log.exception("could not load %s version %s", kind.value, target.version)
                    continue
                self._models = {**self._models, kind: model}
                log.info("serving %s version %s", model.name, model.version)
            return {kind: getattr(self._models.get(kind), "version", None) for kind in ModelKind}

    async def watch(self, every_seconds: float | None) -> None:
        """Refresh in a worker thread now, then every `every_seconds` (None: once)."""
        while True:
            await asyncio.to_thread(self.refresh)
            if every_seconds is None:
                return
            await asyncio.sleep(every_seconds)
