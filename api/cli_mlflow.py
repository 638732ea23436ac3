"""CLI: `loyalgraph mlflow-ui`, the MLflow UI on the service's own tracking store.

The full `mlflow` package cannot share the service's environment (it pins graphql-core below
what Strawberry needs), so the UI runs from its own virtual environment, created on first use
next to the service's (`.venv-mlflow` beside `.venv`, or LOYALGRAPH_MLFLOW_UI_ENV). There is one
pin: pyproject.toml's `mlflow-skinny==X`, the client that writes the store. The UI installs
`mlflow==X` from it, so the store's schema is always one the UI accepts; `--check` says whether
the two agree.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Annotated

import typer

from api.cli_common import console
from core.settings import Settings, sqlite_path

CLIENT_PACKAGE = "mlflow-skinny"
STAMP = ".loyalgraph-mlflow-version"


def register(app: typer.Typer) -> None:
    app.command("mlflow-ui")(mlflow_ui)


def pinned_version() -> str:
    """The MLflow version of the service's client: the single pin (pyproject.toml)."""
    return version(CLIENT_PACKAGE)


def ui_env() -> Path:
    configured = os.environ.get("LOYALGRAPH_MLFLOW_UI_ENV")
    if configured:
        return Path(configured).expanduser().resolve()
    return Path(sys.prefix).resolve().parent / ".venv-mlflow"


def ui_version(env: Path) -> str | None:
    """The `mlflow` version installed in the UI environment, or None if there is none."""
    python = env / "bin" / "python"
    if not python.exists():
        return None
    done = subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
        [str(python), "-c", "from importlib.metadata import version; print(version('mlflow'))"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() if done.returncode == 0 else None


def ensure_ui_env(env: Path, wanted: str) -> None:
    """Create or update the UI's environment so that it holds exactly mlflow==wanted."""
    if ui_version(env) == wanted:
        return
    console.print(f"installing the MLflow UI (mlflow=={wanted}) into {env} ...")
    if not (env / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)  # noqa: S603
    subprocess.run(  # noqa: S603 - fixed arguments, the version comes from our own metadata
        [str(env / "bin" / "python"), "-m", "pip", "install", "--quiet", f"mlflow=={wanted}"],
        check=True,
    )
    installed = ui_version(env)
    if installed != wanted:
        raise RuntimeError(f"the UI environment has mlflow {installed}, expected {wanted}")


def store_revision(tracking_uri: str) -> str | None:
    """The Alembic revision of a SQL tracking store (None: not created yet or not SQL)."""
    import sqlalchemy

    path = sqlite_path(tracking_uri) if tracking_uri.startswith("sqlite") else None
    if tracking_uri.startswith("sqlite") and (path is None or not path.exists()):
        return None
    engine = sqlalchemy.create_engine(tracking_uri)
    try:
        with engine.connect() as connection:
            row = connection.execute(
                sqlalchemy.text("SELECT version_num FROM alembic_version")
            ).first()
    except sqlalchemy.exc.SQLAlchemyError:
        return None
    finally:
        engine.dispose()
    return str(row[0]) if row else None


def ui_schema_head(env: Path) -> str:
    """The newest tracking-store schema the UI's MLflow knows."""
    done = subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
        [
            str(env / "bin" / "python"),
            "-c",
            "from mlflow.store.db.utils import _get_latest_schema_revision as r; print(r())",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def check(settings: Settings, env: Path) -> list[str]:
    """Problems that would stop the UI from reading the store (empty: none)."""
    problems = []
    wanted = pinned_version()
    installed = ui_version(env)
    if installed != wanted:
        problems.append(f"UI environment {env} has mlflow {installed}, the client is {wanted}")
        return problems
    revision = store_revision(settings.mlflow_tracking_uri)
    head = ui_schema_head(env)
    if revision is not None and revision != head:
        problems.append(f"the store is at schema {revision}, the UI expects {head}")
    return problems


def mlflow_ui(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 5000,
    install_only: Annotated[
        bool, typer.Option("--install-only", help="Create the UI environment, then stop.")
    ] = False,
    check_only: Annotated[
        bool, typer.Option("--check", help="Say whether UI, client and store agree; exit 1 if not.")
    ] = False,
) -> None:
    """Serve the MLflow UI on the service's tracking store (installs it on first use)."""
    settings = Settings.from_env()
    env = ui_env()
    ensure_ui_env(env, pinned_version())
    if install_only:
        typer.echo(f"MLflow UI {pinned_version()} ready in {env}")
        return
    problems = check(settings, env)
    if check_only or problems:
        for problem in problems:
            console.print(f"[red]error:[/red] {problem}")
        if not problems:
            typer.echo(f"MLflow UI, client and store agree (mlflow {pinned_version()})")
        raise typer.Exit(1 if problems else 0)
    artifacts = settings.mlflow_artifacts
    console.print(f"MLflow UI: http://{host}:{port}  (store {settings.mlflow_tracking_uri})")
    os.execv(  # noqa: S606 - replaces this process with the UI server
        str(env / "bin" / "mlflow"),
        [
            "mlflow",
            "server",
            "--host",
            host,
            "--port",
            str(port),
            "--backend-store-uri",
            settings.mlflow_tracking_uri,
            "--default-artifact-root",
            str(artifacts),
            "--workers",
            "1",
        ],
    )
