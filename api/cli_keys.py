"""CLI: keys (rotate-root, reencrypt) and the breach register."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's command groups to the `loyalgraph` app."""
