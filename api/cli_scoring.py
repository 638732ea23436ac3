"""CLI for data scientists: `loyalgraph train`, `score`, `evaluate` and `models`.

Every mistake (a cutoff in the future, a zero horizon, a history too short, an unknown alias)
prints one line naming it and exits 2 before anything is registered or stored.
"""

from __future__ import annotations

import json
import uuid
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
    from api.cli_progress import progress_bar
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
            with progress_bar(f"train {request.kind.value}") as report:
                async with sessions() as session:
                    return await run_training(
                        session, settings=settings, request=request, progress=report
                    )

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
        *_window_lines(outcome.data_window),
        "  holdout:",
    ]
    for name, metrics in evaluation.table().items():
        shown = ", ".join(f"{key} {value:.4f}" for key, value in metrics.items())
        lines.append(f"    {name:18} {shown}")
    return "\n".join(lines)


def _window_lines(window: dict[str, Any]) -> list[str]:
    """How many cutoffs and rows the run used, from its data_window.json."""
    splits: dict[str, list[dict[str, Any]]] = {}
    for item in window.get("windows", []):
        splits.setdefault(item["split"], []).append(item)
    train = splits.get("train", [])
    if not train:
        return []
    dates = sorted(item["cutoff"][:10] for item in train)
    lines = [
        f"  trained on {len(train)} cutoffs ({dates[0]} to {dates[-1]}), "
        f"{sum(item['rows'] for item in train):,} rows; horizon {window['horizon_days']} days"
    ]
    for split in ("validation", "holdout"):
        for item in splits.get(split, []):
            lines.append(f"  {split} at {item['cutoff'][:10]}: {item['rows']:,} rows")
    if window.get("labels_overlap"):
        lines.append(
            f"  the history is short for this horizon: splits {window['gap_days']:.0f} days "
            "apart, their label windows overlap (none reaches past the cutoff)"
        )
    return lines


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
    from api.cli_progress import progress_bar
    from core.db import transaction
    from core.errors import DomainError
    from scoring.batch import compute_scores, resolve_owners, store_scores
    from scoring.queries import scores_for, scores_stored
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

    survivors: dict[uuid.UUID, uuid.UUID] = {}

    async def work(sessions: Any) -> tuple[ScoreSet, ScoringRun, dict[uuid.UUID, Any]]:
        with progress_bar("score" if ids else "score --all") as tick:
            async with sessions() as session:
                for key in ids:
                    survivors[key] = (await resolve_owners(session, [key]))[0]
                owners = await resolve_owners(session, ids) if ids else None
                scores = await compute_scores(
                    session,
                    models=models,
                    cutoff=when,
                    currency=settings.currency,
                    owners=owners,
                    progress=tick,
                )
            tick("storing the scores", 1, 1)
            async with transaction(sessions) as session:
                run = await store_scores(session, scores, actor="cli")
                # What was stored, read back under the profiling rule like any read.
                kept = await scores_for(session, owners) if owners else {}
        return scores, run, kept

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
        scores, run, kept = with_sessions(settings, work)
    except DomainError as error:
        raise _fail(error) from None
    report: dict[str, Any] = {
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
    if ids:
        report["customers"] = _stored_json(ids, survivors, kept)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    if ids:
        typer.echo(_stored_text(report["customers"]))
    typer.echo(
        f"scored {run.scored:,} customers as of {run.cutoff.isoformat()} with "
        f"{', '.join(filter(None, [run.churn_model, run.value_model]))}; "
        f"not permitted (no profiling consent, or blocked): {run.not_permitted:,}; "
        f"not scorable (no purchase before the cutoff): {run.not_scorable:,}; "
        f"earlier scores removed: {run.removed:,}; influence computed for "
        f"{len(scores.influence):,}"
    )


def _stored_json(
    ids: list[uuid.UUID], survivors: dict[uuid.UUID, uuid.UUID], stored: dict[uuid.UUID, Any]
) -> list[dict[str, Any]]:
    """Each requested customer's stored scores: score, band, percentile, model and reasons."""
    from scoring.kinds import ModelKind

    out: list[dict[str, Any]] = []
    for requested, (owner, kinds) in zip(ids, _by_request(ids, survivors, stored), strict=True):
        entry: dict[str, Any] = {"customer_id": str(requested), "scores": {}}
        if owner != requested:
            entry["survivor_id"] = str(owner)
        for kind in ModelKind:
            row = kinds.get(kind)
            if row is None:
                continue
            entry["scores"][kind.value] = {
                "score": row.score,
                "unit": "probability" if kind is ModelKind.CHURN else f"{row.currency} minor units",
                "band": row.band,
                "percentile": row.percentile,
                "model": f"{row.model_name} v{row.model_version}",
                "horizon_days": row.horizon_days,
                "cutoff": row.cutoff.isoformat(),
                "reasons": row.reasons,
            }
        out.append(entry)
    return out


def _by_request(
    ids: list[uuid.UUID], survivors: dict[uuid.UUID, uuid.UUID], stored: dict[uuid.UUID, Any]
) -> list[tuple[uuid.UUID, dict[Any, Any]]]:
    """The stored rows of each requested id: its own, or its survivor's after a merge."""
    return [(survivors[key], stored.get(survivors[key], {})) for key in ids]


def _stored_text(customers: list[dict[str, Any]]) -> str:
    lines: list[str] = []
    for entry in customers:
        survivor = f" (merged into {entry['survivor_id']})" if "survivor_id" in entry else ""
        lines.append(f"customer {entry['customer_id']}{survivor}:")
        if not entry["scores"]:
            lines.append(
                "  no score stored: no profiling consent, blocked, or no purchase before the cutoff"
            )
        for kind, row in entry["scores"].items():
            shown = (
                f"{row['score']:.3f}" if kind == "churn" else f"{row['score']:,.0f} {row['unit']}"
            )
            lines.append(
                f"  {kind}: {shown}, band {row['band']}, percentile {row['percentile']:.1f} "
                f"({row['model']}, {row['horizon_days']} days from {row['cutoff'][:10]})"
            )
            for reason in row["reasons"]:
                value = reason.get("value")
                shown_value = "-" if value is None else f"{value:g}"
                lines.append(
                    f"    {reason['feature']:28} = {shown_value:>12}  "
                    f"contribution {reason['contribution']:+.4f}"
                )
    return "\n".join(lines)


def evaluate(
    kind: Annotated[KindChoice, typer.Argument(help="Which model: churn, value or all.")],
    alias: Annotated[str, typer.Option(help="The registered alias to evaluate.")] = "champion",
    cutoff: Annotated[str | None, typer.Option(help="Evaluate as of this date.")] = None,
    horizon: Annotated[
        int | None,
        typer.Option(help="Days the labels cover (default: the model's horizon)."),
    ] = None,
    relabel: Annotated[
        bool,
        typer.Option(
            "--relabel",
            help="Label the holdout for --horizon although the model predicts another "
            "horizon; the model is then measured by its ranking only.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the table as JSON.")] = False,
) -> None:
    """Evaluate a registered model and the baselines on the holdout of a cutoff (the H days
    before it): the same numbers a training run logs, for any version and any date. A horizon
    other than the model's is refused unless --relabel says to relabel for it."""
    from api.cli_common import with_sessions
    from core.errors import DomainError
    from scoring.validation import check_horizon, resolve_cutoff

    settings = load_settings()
    when = parse_cutoff(cutoff)
    try:
        if horizon is not None:
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
                    relabel=relabel,
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
        if table["relabelled"]:
            typer.echo(
                f"  relabelled: the model predicts {table['model_horizon_days']} days, so it is "
                "measured by its ranking only"
            )
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
