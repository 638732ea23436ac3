"""CLI for data scientists: `loyalgraph train`, `score`, `evaluate` and `models`.

Every mistake (a cutoff in the future, a zero horizon, a history too short, an unknown alias)
prints one line naming it and exits 2 before anything is registered or stored.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from api.cli_common import console, load_settings, parse_instant
from api.schema.common import customer_uuid

if TYPE_CHECKING:
    from core.settings import Settings
    from ml.tracking import TrainOutcome
    from scoring.batch import Models, ScoreSet
    from scoring.models import ScoringRun


class KindChoice(StrEnum):
    CHURN = "churn"
    VALUE = "value"
    ALL = "all"


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("score")(score)
    app.command("evaluate")(evaluate)
    app.command("models")(models)


def _kinds(choice: KindChoice) -> list[Any]:
    from scoring.kinds import ModelKind

    return list(ModelKind) if choice is KindChoice.ALL else [ModelKind(choice.value)]


def parse_cutoff(value: str | None) -> datetime | None:
    """A date means its midnight UTC, no zone means UTC; None: the default (now)."""
    return None if value is None else parse_instant(value, "--cutoff")


def _fail(error: Exception) -> typer.Exit:
    code = getattr(error, "code", None)
    label = f"{code}: " if code is not None else ""
    console.print(f"[red]error:[/red] {label}{error}")
    return typer.Exit(2)


def _params(values: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            console.print(f"[red]error:[/red] --param takes KEY=VALUE, got {item!r}")
            raise typer.Exit(2)
        try:
            params[key] = json.loads(raw)
        except json.JSONDecodeError:
            params[key] = raw
    return params


def _has_champion(settings: Settings, kind: Any) -> bool:
    from scoring.errors import ScoringError
    from scoring.registry import resolve_alias

    try:
        resolve_alias(settings.mlflow_tracking_uri, kind)
    except ScoringError:
        return False
    return True


def train(
    kind: Annotated[KindChoice, typer.Argument(help="Which model: churn, value or all.")],
    cutoff: Annotated[
        str | None, typer.Option(help="Train as of this date (default now); nothing later is read.")
    ] = None,
    horizon: Annotated[int, typer.Option(help="Days after a cutoff that the labels cover.")] = 90,
    cutoffs: Annotated[int, typer.Option(help="Historical training cutoffs to stack.")] = 12,
    step: Annotated[int, typer.Option(help="Days between training cutoffs.")] = 30,
    no_influence: Annotated[
        bool, typer.Option("--no-influence", help="Leave the influence features out.")
    ] = False,
    param: Annotated[
        list[str] | None, typer.Option(help="A LightGBM parameter KEY=VALUE (repeatable).")
    ] = None,
    if_no_champion: Annotated[
        bool, typer.Option("--if-no-champion", help="Do nothing for a kind that has a champion.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
) -> None:
    """Train a model on stacked historical cutoffs, compare it on the holdout with the
    champion, an RFM rule and BG/NBD + Gamma-Gamma, log it all to MLflow, register it, and
    move the `champion` alias only if it wins."""
    from api.cli_common import with_sessions
    from core.errors import DomainError
    from scoring.validation import check_training, resolve_cutoff

    settings = load_settings()
    when = parse_cutoff(cutoff)
    extra = _params(param or [])
    try:  # mistakes are answered before the models and MLflow are even imported
        check_training(horizon_days=horizon, train_cutoffs=cutoffs, step_days=step, max_rounds=1)
        resolve_cutoff(when)
    except DomainError as error:
        raise _fail(error) from None
    from ml.pipeline import train as run_training
    from ml.training import TrainRequest

    outcomes: list[TrainOutcome] = []
    for model_kind in _kinds(kind):
        if if_no_champion and _has_champion(settings, model_kind):
            console.print(f"{model_kind.registered_name} has a champion: not training")
            continue
        request = TrainRequest(
            kind=model_kind,
            cutoff=when,
            horizon_days=horizon,
            train_cutoffs=cutoffs,
            step_days=step,
            include_influence=not no_influence,
            params=extra,
        )

        async def work(sessions: Any, request: TrainRequest = request) -> TrainOutcome:
            async with sessions() as session:
                return await run_training(session, settings=settings, request=request)

        try:
            outcome = with_sessions(settings, work)
        except DomainError as error:
            raise _fail(error) from None
        outcomes.append(outcome)
        if not as_json:
            typer.echo(_train_text(outcome))
    if as_json:
        typer.echo(json.dumps([outcome.as_json() for outcome in outcomes], indent=2))


def _train_text(outcome: TrainOutcome) -> str:
    evaluation = outcome.evaluation
    lines = [
        f"{outcome.model_name} version {outcome.version} (run {outcome.run_id}): "
        + ("PROMOTED to @champion" if outcome.promoted else "not promoted"),
        f"  {outcome.reason}",
        "  holdout:",
    ]
    for name, metrics in evaluation.table().items():
        shown = ", ".join(f"{key} {value:.4f}" for key, value in metrics.items())
        lines.append(f"    {name:18} {shown}")
    return "\n".join(lines)


def _load_models(
    settings: Settings, choice: KindChoice, alias: str, *, skip_missing: bool
) -> Models | None:
    """The aliased models of the chosen kinds; with `skip_missing`, kinds without the alias
    are left out (None when none has it)."""
    from scoring.batch import Models
    from scoring.errors import ScoringError
    from scoring.kinds import ModelKind
    from scoring.registry import load_alias

    loaded = {}
    for kind in _kinds(choice):
        try:
            loaded[kind] = load_alias(settings.mlflow_tracking_uri, kind, alias)
        except ScoringError:
            if not skip_missing:
                raise
            console.print(f"{kind.registered_name} has no @{alias}: not scoring {kind.value}")
    if not loaded:
        return None
    return Models(churn=loaded.get(ModelKind.CHURN), value=loaded.get(ModelKind.VALUE))


def score(
    everyone: Annotated[bool, typer.Option("--all", help="Score every customer.")] = False,
    customer: Annotated[
        list[str] | None, typer.Option(help="Score this customer (global id or UUID; repeatable).")
    ] = None,
    cutoff: Annotated[str | None, typer.Option(help="Score as of this date (default now).")] = None,
    alias: Annotated[str, typer.Option(help="The registered alias to score with.")] = "champion",
    kind: Annotated[KindChoice, typer.Option(help="Which scores: churn, value or all.")] = (
        KindChoice.ALL
    ),
    if_unscored: Annotated[
        bool, typer.Option("--if-unscored", help="Do nothing when scores are stored already.")
    ] = False,
    if_champion: Annotated[
        bool,
        typer.Option("--if-champion", help="Skip, instead of failing, a kind without the alias."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Score in batch with the aliased models and store each score with its model version,
    cutoff and top contributions. Customers without a profiling consent, or blocked, are
    neither scored nor kept: their earlier scores are deleted by a run over everyone."""
    from api.cli_common import with_sessions
    from core.db import transaction
    from core.errors import DomainError
    from scoring.batch import compute_scores, resolve_owners, store_scores
    from scoring.queries import scores_stored
    from scoring.validation import resolve_cutoff

    if everyone == bool(customer):
        console.print("[red]error:[/red] give either --all or --customer ID")
        raise typer.Exit(2)
    settings = load_settings()
    try:
        ids = [customer_uuid(value) for value in customer or []]
    except Exception:
        console.print("[red]error:[/red] --customer takes a customer id (global id or UUID)")
        raise typer.Exit(2) from None

    async def stored(sessions: Any) -> bool:
        async with sessions() as session:
            return await scores_stored(session)

    async def work(sessions: Any) -> tuple[ScoreSet, ScoringRun]:
        async with sessions() as session:
            owners = await resolve_owners(session, ids) if ids else None
            scores = await compute_scores(
                session,
                models=models,
                cutoff=when,
                currency=settings.currency,
                owners=owners,
            )
        async with transaction(sessions) as session:
            run = await store_scores(session, scores, actor="cli")
        return scores, run

    try:
        when = resolve_cutoff(parse_cutoff(cutoff))
        if if_unscored and with_sessions(settings, stored):
            console.print("scores are stored already: not scoring")
            return
        loaded = _load_models(settings, kind, alias, skip_missing=if_champion)
        if loaded is None:
            console.print("no model to score with: nothing scored")
            return
        models = loaded
        scores, run = with_sessions(settings, work)
    except DomainError as error:
        raise _fail(error) from None
    report = {
        "run_id": str(run.id),
        "cutoff": run.cutoff.isoformat(),
        "churn_model": run.churn_model,
        "value_model": run.value_model,
        "scored": run.scored,
        "not_permitted": run.not_permitted,
        "not_scorable": run.not_scorable,
        "removed": run.removed,
        "influence": len(scores.influence),
    }
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    typer.echo(
        f"scored {run.scored:,} customers as of {run.cutoff.isoformat()} with "
        f"{', '.join(filter(None, [run.churn_model, run.value_model]))}; "
        f"not permitted (no profiling consent, or blocked): {run.not_permitted:,}; "
        f"not scorable (no purchase before the cutoff): {run.not_scorable:,}; "
        f"earlier scores removed: {run.removed:,}; influence computed for "
        f"{len(scores.influence):,}"
    )


def evaluate(
    kind: Annotated[KindChoice, typer.Argument(help="Which model: churn, value or all.")],
    alias: Annotated[str, typer.Option(help="The registered alias to evaluate.")] = "champion",
    cutoff: Annotated[str | None, typer.Option(help="Evaluate as of this date.")] = None,
    horizon: Annotated[int, typer.Option(help="Days the labels cover.")] = 90,
    as_json: Annotated[bool, typer.Option("--json", help="Print the table as JSON.")] = False,
) -> None:
    """Evaluate a registered model and the baselines on the holdout of a cutoff (the H days
    before it): the same numbers a training run logs, for any version and any date."""
    from api.cli_common import with_sessions
    from core.errors import DomainError
    from scoring.validation import check_horizon, resolve_cutoff

    settings = load_settings()
    when = parse_cutoff(cutoff)
    try:
        check_horizon(horizon)
        resolve_cutoff(when)
    except DomainError as error:
        raise _fail(error) from None
    from ml.evaluation import evaluate_alias

    tables: dict[str, Any] = {}
    for model_kind in _kinds(kind):

        async def work(sessions: Any, model_kind: Any = model_kind) -> dict[str, Any]:
            async with sessions() as session:
                return await evaluate_alias(
                    session,
                    settings=settings,
                    kind=model_kind,
                    alias=alias,
                    cutoff=when,
                    horizon_days=horizon,
                )

        try:
            tables[model_kind.value] = with_sessions(settings, work)
        except DomainError as error:
            raise _fail(error) from None
    if as_json:
        typer.echo(json.dumps(tables, indent=2))
        return
    for name, table in tables.items():
        typer.echo(f"{name}: holdout {table['holdout_cutoff']} + {table['horizon_days']} days")
        for row, metrics in table["metrics"].items():
            shown = ", ".join(f"{key} {value:.4f}" for key, value in metrics.items())
            typer.echo(f"  {row:18} {shown}")


def models(as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False) -> None:
    """Registered versions of each model, with their aliases and promotion decisions."""
    from ml.evaluation import registered_versions

    settings = load_settings()
    rows = registered_versions(settings.mlflow_tracking_uri)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("no model is registered yet (loyalgraph train churn|value)")
    for row in rows:
        aliases = f" @{', @'.join(row['aliases'])}" if row["aliases"] else ""
        typer.echo(f"{row['model']} v{row['version']}{aliases}: {row['decision'] or '-'}")
