"""CLI: compliance exports (export consent-audit, export verify) and `audit verify`."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's command groups to the `loyalgraph` app."""
