"""Program versions in the database: load a definition, find the active one.

Loading a definition that differs from the active one stores it as the next version and makes
it active; loading the same definition again changes nothing. Lots and entries keep the id of
the version that produced them, so history is explained by the rules of its own time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from core.clock import utcnow
from loyalty.definition import ProgramDefinition, parse_definition
from loyalty.errors import LoyaltyErrorCode, loyalty_error
from loyalty.models import Program

# Versions never change once stored, so their parsed form can be kept by id.
_parsed: dict[Any, ProgramDefinition] = {}


class ProgramFileError(ValueError):
    """A program file that cannot be read or does not validate; the message names the place."""


@dataclass(frozen=True, slots=True)
class ActiveProgram:
    row: Program
    rules: ProgramDefinition


def describe(error: ValidationError) -> str:
    problems = []
    for item in error.errors()[:10]:
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        problems.append(f"{where}: {item['msg']}")
    return "; ".join(problems)


def read_program_file(path: Path) -> ProgramDefinition:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ProgramFileError(f"cannot read {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise ProgramFileError(f"{path} is not valid YAML: {error}") from None
    try:
        return parse_definition(data)
    except ValidationError as error:
        raise ProgramFileError(f"{path}: {describe(error)}") from None


async def load_program(
    session: AsyncSession, definition: ProgramDefinition, *, actor: str
) -> tuple[Program, bool]:
    """Store `definition` as the active version; returns the row and whether it is new."""
    current = await active_program(session, lock=True)
    digest = definition.digest()
    if current is not None and current.row.digest == digest:
        return current.row, False
    latest = (
        await session.execute(
            select(func.max(col(Program.version))).where(col(Program.code) == definition.code)
        )
    ).scalar_one()
    await session.execute(update(Program).where(col(Program.active)).values(active=False))
    await session.flush()
    row = Program(
        code=definition.code,
        version=(latest or 0) + 1,
        name=definition.name,
        definition=definition.model_dump(mode="json"),
        digest=digest,
        active=True,
        loaded_at=utcnow(),
        loaded_by=actor,
    )
    session.add(row)
    await session.flush()
    _parsed[row.id] = definition
    return row, True


async def active_program(session: AsyncSession, *, lock: bool = False) -> ActiveProgram | None:
    query = select(Program).where(col(Program.active))
    if lock:
        query = query.with_for_update()
    row = (await session.execute(query)).scalar_one_or_none()
    if row is None:
        return None
    rules = _parsed.get(row.id)
    if rules is None:
        rules = _parsed[row.id] = parse_definition(row.definition)
    return ActiveProgram(row, rules)


async def require_program(session: AsyncSession, *, lock: bool = False) -> ActiveProgram:
    program = await active_program(session, lock=lock)
    if program is None:
        raise loyalty_error(
            LoyaltyErrorCode.NO_ACTIVE_PROGRAM,
            "no loyalty program is loaded (loyalgraph loyalty load-program FILE)",
        )
    return program
