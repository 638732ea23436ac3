"""`GET /exports/{id}?token=...`: download a signed export; `/exports/{id}.sig` (or
`?part=signature`) downloads its detached signature.

The link's token is the only credential (a browser follows it without headers): it is signed,
names the one export it opens, and expires after 15 minutes. A bad, expired or foreign token is
403 before the database is asked anything; an unknown or expired export is 404. Each download
is recorded in the audit log (`export.downloaded`) with the actor the link was issued to.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from api.http import error_body
from api.schema.common import ApiErrorCode
from core.db import transaction
from core.settings import Settings
from privacy import audit
from privacy.exports import (
    MEDIA_TYPES,
    ExportFormat,
    LinkError,
    download_name,
    find_servable_export,
    read_download_token,
)
from privacy.keys import KeyProvider
from privacy.signing import SUFFIX, signature_path

NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def _refuse(status: int, code: ApiErrorCode | str, message: str) -> Response:
    return JSONResponse(error_body(code, message), status_code=status, headers=NO_STORE)


def _parse(raw: str, part: str | None) -> tuple[uuid.UUID, bool] | None:
    wants_signature = part == "signature"
    if raw.endswith(SUFFIX):
        raw, wants_signature = raw[: -len(SUFFIX)], True
    try:
        return uuid.UUID(raw), wants_signature
    except ValueError:
        return None


async def download_export(request: Request) -> Response:
    parsed = _parse(request.path_params["export_id"], request.query_params.get("part"))
    if parsed is None:
        return _refuse(404, "NOT_FOUND", "no such export")
    export_id, wants_signature = parsed
    provider: KeyProvider = request.app.state.provider
    settings: Settings = request.app.state.settings
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    try:
        actor = read_download_token(
            provider, request.query_params.get("token", ""), export_id=export_id
        )
    except LinkError as error:
        return _refuse(403, ApiErrorCode.FORBIDDEN, str(error))
    async with transaction(sessions) as session:
        row = await find_servable_export(session, export_id)
        path = None if row is None else settings.exports_dir / row.file_name
        if row is None or path is None or not path.is_file():
            return _refuse(404, "NOT_FOUND", "no such export, or it has expired")
        part = "signature" if wants_signature else "file"
        await audit.record(
            session,
            provider,
            action="export.downloaded",
            actor=actor,
            details={"export_id": str(export_id), "part": part},
        )
    name = download_name(row)
    if wants_signature:
        return FileResponse(
            signature_path(path),
            media_type="application/json",
            filename=name + SUFFIX,
            headers=NO_STORE,
        )
    return FileResponse(
        path, media_type=MEDIA_TYPES[ExportFormat(row.format)], filename=name, headers=NO_STORE
    )


ROUTES = [Route("/exports/{export_id}", download_export, methods=["GET"])]
