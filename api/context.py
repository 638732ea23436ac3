"""The typed per-request context: session, principal, cipher, loaders."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from strawberry.types import Info as StrawberryInfo

from api.auth import Principal
from api.schema.common import CursorCodec
from api.schema.loaders import Loaders
from core.settings import Settings
from privacy.fields import FieldCipher
from privacy.keys import KeyProvider
from scoring.registry import Champions


@dataclass
class Context:
    request: Request
    response: Response | None
    session: AsyncSession
    settings: Settings
    provider: KeyProvider
    principal: Principal
    cipher: FieldCipher
    cursors: CursorCodec
    loaders: Loaders = field(init=False)
    # The customer the principal stands for, resolved to its survivor (customers only).
    owner_id: uuid.UUID | None = None
    # Subjects whose decrypted personal data staff read in this request: audited before the
    # response leaves (api/http.py).
    personal_reads: set[uuid.UUID] = field(default_factory=set)
    # The champion models this process serves (loaded off the request path).
    champions: Champions | None = None

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.session, self.cipher, self.settings.currency)

    def reset(self) -> None:
        """After a mutation: fresh loaders (nothing read before it is served stale) and a fresh
        key cache (no data key from a rolled-back transaction is reused)."""
        self.cipher = FieldCipher(self.session, self.provider)
        self.loaders = Loaders(self.session, self.cipher, self.settings.currency)


Info = StrawberryInfo[Context, None]
