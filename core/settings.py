"""Settings from the environment. All local state lives under one data directory."""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


class Environment(StrEnum):
    DEV = "dev"
    PROD = "prod"


class SettingsError(ValueError):
    """A setting in the environment has a value we cannot use."""


@dataclass(frozen=True, slots=True)
class Settings:
    home: Path
    database_url: str
    keyring_path: Path
    mlflow_tracking_uri: str
    mlflow_artifacts: Path
    exports_dir: Path
    env: Environment
    currency: str
    # How often a serving process checks whether a champion alias moved (0: load once).
    model_refresh_seconds: float = 60.0
    jwt_issuer: str = "loyalgraph"
    # Requests per minute per API key unless the key has its own limit; shared via Redis if set.
    rate_limit_per_minute: int = 600
    redis_url: str | None = None

    @property
    def is_prod(self) -> bool:
        return self.env is Environment.PROD

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Read every LOYALGRAPH_* variable; each part of the state may be moved on its own."""
        env = dict(os.environ if environ is None else environ)
        home = default_home(env)
        raw_env = env.get("LOYALGRAPH_ENV", "dev").lower()
        try:
            environment = Environment(raw_env)
        except ValueError:
            raise SettingsError(
                f"LOYALGRAPH_ENV must be one of {[e.value for e in Environment]}, got {raw_env!r}"
            ) from None
        currency = env.get("LOYALGRAPH_CURRENCY", "RUB").upper()
        raw_refresh = env.get("LOYALGRAPH_MODEL_REFRESH_SECONDS", "60")
        try:
            refresh = float(raw_refresh)
        except ValueError:
            refresh = -1.0
        if not 0 <= refresh <= 86_400:
            raise SettingsError("LOYALGRAPH_MODEL_REFRESH_SECONDS must be 0 to 86400 seconds")
        raw_limit = env.get("LOYALGRAPH_RATE_LIMIT", "600")
        if not raw_limit.isdigit() or int(raw_limit) < 1:
            raise SettingsError("LOYALGRAPH_RATE_LIMIT must be a whole number of requests/minute")
        if len(currency) != 3 or not currency.isalpha():
            raise SettingsError("LOYALGRAPH_CURRENCY must be an ISO 4217 code such as RUB")
        return cls(
            home=home,
            database_url=env.get("LOYALGRAPH_DATABASE_URL", f"sqlite:///{home / 'loyalgraph.db'}"),
            keyring_path=Path(env.get("LOYALGRAPH_KEYRING", str(home / "keyring.json"))),
            mlflow_tracking_uri=env.get(
                "LOYALGRAPH_MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}"
            ),
            mlflow_artifacts=Path(
                env.get("LOYALGRAPH_MLFLOW_ARTIFACTS", str(home / "mlartifacts"))
            ).resolve(),
            exports_dir=Path(env.get("LOYALGRAPH_EXPORTS_DIR", str(home / "exports"))),
            env=environment,
            currency=currency,
            model_refresh_seconds=refresh,
            rate_limit_per_minute=int(raw_limit),
            redis_url=env.get("LOYALGRAPH_REDIS_URL") or None,
        )

    def ensure_dirs(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.keyring_path.parent.mkdir(parents=True, exist_ok=True)
        self.exports_dir.mkdir(parents=True, exist_ok=True)
        if self.database_url.startswith("sqlite"):
            db_path = sqlite_path(self.database_url)
            if db_path is not None:
                db_path.parent.mkdir(parents=True, exist_ok=True)


CHECKOUT = Path(__file__).resolve().parent.parent


def default_home(env: dict[str, str]) -> Path:
    """The data home, the same absolute place whatever the working folder:

    1. LOYALGRAPH_HOME when set (a relative value is taken from the working folder, once);
    2. else, when loyalgraph runs from a source checkout (an editable install, `make run`),
       that checkout's `var/`, so a cron job started from `/` sees the data of `make run`;
    3. else (an installed package) `$XDG_DATA_HOME/loyalgraph` (~/.local/share/loyalgraph).
    """
    configured = env.get("LOYALGRAPH_HOME")
    if configured:
        return Path(configured).expanduser().resolve()
    if (CHECKOUT / "pyproject.toml").exists() and (CHECKOUT / "migrations").is_dir():
        return CHECKOUT / "var"
    data = env.get("XDG_DATA_HOME") or str(Path("~/.local/share").expanduser())
    return Path(data).expanduser().resolve() / "loyalgraph"


def sqlite_path(url: str) -> Path | None:
    """The file behind a sqlite URL, or None for an in-memory database."""
    _, _, rest = url.partition(":///")
    if not rest or rest == ":memory:":
        return None
    return Path(rest)
