"""CLI: `apikey list | revoke | rotate` (the `apikey` group; `apikey create` is in api/cli.py)."""

from __future__ import annotations

from typing import Annotated

import typer

from api.cli_common import Sessions, console, load_settings, with_sessions
from core.db import transaction

STAMP = "%Y-%m-%d %H:%MZ"


def extend(group: typer.Typer) -> None:
    group.command("list")(apikey_list)
    group.command("revoke")(apikey_revoke)
    group.command("rotate")(apikey_rotate)


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(2)


def apikey_list(
    all_: Annotated[bool, typer.Option("--all", help="Revoked keys too.")] = False,
) -> None:
    """Keys with their app, creation, last use and rate limit (never the key itself)."""
    from api.apikeys import list_api_keys

    settings = load_settings(read_only=True)

    async def work(sessions: Sessions) -> list[str]:
        async with sessions() as session:
            rows = await list_api_keys(session, include_revoked=all_)
        lines = []
        for row in rows:
            used = f"{row.last_used_at:{STAMP}}" if row.last_used_at else "never"
            limit = row.rate_limit_per_minute or settings.rate_limit_per_minute
            state = f"  revoked {row.revoked_at:{STAMP}}" if row.revoked_at else ""
            lines.append(
                f"{row.id}  {row.app_name}  created {row.created_at:{STAMP}}  "
                f"last used {used}  {limit}/min{state}"
            )
        return lines

    lines = with_sessions(settings, work)
    for line in lines:
        typer.echo(line)
    if not lines:
        typer.echo("no API keys" if all_ else "no active API keys")


def apikey_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (apikey list).")],
) -> None:
    """Revoke a key; the next request that carries it is refused."""
    from api.apikeys import ApiKeyError, revoke_api_key

    settings = load_settings()

    async def work(sessions: Sessions) -> str:
        async with transaction(sessions) as session:
            row = await revoke_api_key(session, key_id=key_id)
            return f"revoked {row.id} ({row.app_name})"

    try:
        typer.echo(with_sessions(settings, work))
    except ApiKeyError as error:
        raise _fail(str(error)) from None


def apikey_rotate(
    key_id: Annotated[str, typer.Argument(help="The key's id (apikey list).")],
) -> None:
    """Revoke a key and print a new one for the same app (shown once, stored as a hash)."""
    from api.apikeys import ApiKeyError, rotate_api_key

    settings = load_settings()

    async def work(sessions: Sessions) -> tuple[str, str]:
        async with transaction(sessions) as session:
            row, plaintext = await rotate_api_key(session, key_id=key_id)
            return str(row.id), plaintext

    try:
        new_id, plaintext = with_sessions(settings, work)
    except ApiKeyError as error:
        raise _fail(str(error)) from None
    console.print(f"revoked {key_id}; new key {new_id}:")
    typer.echo(plaintext)
