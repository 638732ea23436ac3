"""CLI: data subject requests for compliance officers (requests due)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's command groups to the `loyalgraph` app."""
