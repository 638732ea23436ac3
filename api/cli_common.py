"""What every CLI module shares: the error console and the configured settings."""

from __future__ import annotations

from rich.console import Console

from core.settings import Settings

console = Console(stderr=True)


def load_settings() -> Settings:
    settings = Settings.from_env()
    settings.ensure_dirs()
    return settings
