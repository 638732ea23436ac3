"""The GraphQL endpoint: authentication, a session per request, GraphQL-over-HTTP semantics.

- `application/graphql-response+json` (when the client accepts it): 400 without `data` on a
  parse or validation failure, 200 otherwise.
- `application/json`: 200 for every well-formed GraphQL request (legacy clients).
- Mutations over GET: 405. Missing or wrong credentials: 401 with `UNAUTHENTICATED`.
- Every error carries `extensions.code`.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData, process_result
from strawberry.schema import BaseSchema
from strawberry.types import ExecutionResult

from api import ide
from api.apikeys import find_api_key, touch_last_used
from api.auth import ANONYMOUS, AuthError, Principal, Role, principal_from_token
from api.context import Context
from api.persisted import PersistedQueries, PersistedQueryError
from api.ratelimit import RateLimiter, rate_limiter
from api.schema.common import ApiErrorCode, CursorCodec, tag_error
from api.transport import UNAVAILABLE_MESSAGE, database_unavailable, decode_request_json
from core.db import transaction
from core.settings import Settings
from graph.enums import CustomerStatus
from graph.models import Customer
from privacy import audit
from privacy.fields import FieldCipher
from privacy.keys import KeyProvider
from scoring.registry import Champions

GRAPHQL_RESPONSE = "application/graphql-response+json"
log = logging.getLogger("loyalgraph.http")


def error_body(code: ApiErrorCode | str, message: str) -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": str(code)}}]}


def _wants_graphql_response(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return GRAPHQL_RESPONSE in accept


class RateLimited(Exception):
    def __init__(self, retry_after: int, limit: int) -> None:
        super().__init__(f"rate limited for {retry_after} s")
        self.retry_after = retry_after
        self.limit = limit


class GraphQLView(GraphQL[Context, None]):
    def __init__(
        self,
        schema: BaseSchema,
        *,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        provider: KeyProvider,
        champions: Champions | None = None,
    ) -> None:
        super().__init__(schema, graphql_ide=None if settings.is_prod else "graphiql")
        self.champions = champions
        self.settings = settings
        self.sessions = sessions
        self.provider = provider
        self.cursors = CursorCodec(provider.secret("cursor"))
        self.persisted = PersistedQueries()
        self.limiter: RateLimiter = rate_limiter(settings.redis_url)

    def decode_json(self, data: str | bytes) -> object:
        return decode_request_json(data)

    async def parse_http_body(self, request: Any) -> GraphQLRequestData | list[GraphQLRequestData]:
        parsed = await super().parse_http_body(request)
        for item in parsed if isinstance(parsed, list) else [parsed]:
            item.query = self.persisted.resolve(item.query, item.extensions)
        return parsed

    async def authenticate(self, request: Request, session: AsyncSession) -> Principal:
        header = request.headers.get("authorization")
        api_key = request.headers.get("x-api-key")
        principals: list[Principal] = []
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token:
                raise AuthError("use `Authorization: Bearer <token>`")
            principals.append(
                principal_from_token(
                    self.provider.secret("jwt"), token.strip(), issuer=self.settings.jwt_issuer
                )
            )
        if api_key:
            row = await find_api_key(session, plaintext=api_key.strip())
            if row is None:
                raise AuthError("unknown or revoked API key")
            limit = row.rate_limit_per_minute or self.settings.rate_limit_per_minute
            retry_after = await self.limiter.hit(str(row.id), limit)
            if retry_after is not None:
                raise RateLimited(retry_after, limit)
            # Recorded after the request's own session ends (a second writer inside it could
            # clash with the request's own transaction on SQLite).
            request.state.api_key_used = (row.id, row.last_used_at)
            principals.append(
                Principal(
                    subject=f"app:{row.app_name}",
                    roles=frozenset({Role.APP}),
                    app_name=row.app_name,
                )
            )
        if not principals:
            raise AuthError("credentials required: an API key (X-API-Key) or a bearer token")
        if len(principals) == 1:
            return principals[0]
        # A token and a key together: the token says who acts (a customer stays confined to
        # their own data even inside a trusted app), the key only names the app.
        token_principal, app_principal = principals
        return replace(token_principal, app_name=app_principal.app_name)

    async def get_context(self, request: Request, response: Response) -> Context:  # type: ignore[override]
        session = self.sessions()
        request.state.session = session
        request.state.context = None
        cipher = FieldCipher(session, self.provider)
        if self._renders_ide(request):
            principal = ANONYMOUS
        else:
            principal = await self.authenticate(request, session)
        context = Context(
            request=request,
            response=response,
            session=session,
            settings=self.settings,
            provider=self.provider,
            principal=principal,
            cipher=cipher,
            cursors=self.cursors,
            champions=self.champions,
        )
        if principal.customer_id is not None:
            # The token's own subject must be active: after a merge it is not, and its token
            # must not act as the survivor (the customer signs in again and gets a new one).
            customer = await session.get(Customer, principal.customer_id)
            if customer is None or customer.status != CustomerStatus.ACTIVE:
                raise AuthError("the token's customer does not exist or is not active")
            context.owner_id = customer.id
        request.state.context = context
        return context

    async def audit_reads(self, context: Context) -> None:
        """One audit entry per subject whose personal data a staff member read."""
        async with transaction(self.sessions) as session:
            for subject_id in sorted(context.personal_reads):
                await audit.record(
                    session,
                    self.provider,
                    action="personal_data.read",
                    actor=context.principal.actor,
                    subject_id=subject_id,
                )

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        return HTMLResponse(ide.page())  # served from the package's own assets (api/ide.py)

    def _renders_ide(self, request: Request) -> bool:
        return (
            self.graphql_ide is not None
            and request.method == "GET"
            and "text/html" in request.headers.get("accept", "")
            and "query" not in request.query_params
        )

    async def run(self, request: Any, context: Any = None, root_value: Any = None) -> Any:
        try:
            if context is None:
                return await super().run(request)
            return await super().run(request, context=context, root_value=root_value)
        except PersistedQueryError as error:
            return JSONResponse(error_body(error.code, error.message))
        except RateLimited as error:
            return JSONResponse(
                error_body("RATE_LIMITED", f"over {error.limit} requests per minute for this key"),
                status_code=429,
                headers={"Retry-After": str(error.retry_after)},
            )
        except AuthError as error:
            return JSONResponse(
                error_body(ApiErrorCode.UNAUTHENTICATED, str(error)),
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="loyalgraph"'},
            )
        except Exception as error:
            # Authentication reads the database (API keys, a customer token's subject).
            if not database_unavailable(error):
                raise
            log.warning("database unavailable: %s", type(error).__name__)
            return _unavailable()
        finally:
            session: AsyncSession | None = getattr(request.state, "session", None)
            if session is not None:
                await session.close()
            used = getattr(request.state, "api_key_used", None)
            if used is not None:
                # Bookkeeping after the request's own commit: it must never change the answer
                # (a failed write here would turn a committed mutation into an error).
                try:
                    async with transaction(self.sessions) as use:
                        await touch_last_used(use, key_id=used[0], last_used_at=used[1])
                except Exception as error:
                    log.warning("api key last-used not recorded: %s", type(error).__name__)
            context = getattr(request.state, "context", None)
            if context is not None and context.personal_reads:
                # Before the response leaves: if the audit cannot be written, the read fails.
                await self.audit_reads(context)

    async def execute_single(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        try:
            return await super().execute_single(*args, **kwargs)
        except Exception as error:
            reason = getattr(error, "reason", "")
            if kwargs["request_adapter"].method == "GET" and "GET" in reason:
                error.status_code = 405  # type: ignore[attr-defined]
            raise

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        for error in result.errors or []:
            tag_error(error)
            if database_unavailable(error.original_error):
                request.state.database_unavailable = True
        body = process_result(result)
        # A request error (parse, validation, variables) never started execution: no `data`.
        request_error = result.data is None and all(e.path is None for e in result.errors or [])
        if request_error and result.errors:
            body.pop("data", None)
        request.state.graphql_failed = request_error and bool(result.errors)
        return body

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive=receive)
        try:
            response = await self.run(request)
        except Exception as error:  # strawberry's HTTPException: malformed request
            status = getattr(error, "status_code", None)
            if status is None:
                # Never a traceback to the client: logged here, a typed 500 there.
                log.error("unhandled %s", type(error).__name__, exc_info=error)
                response = JSONResponse(
                    error_body(ApiErrorCode.INTERNAL_SERVER_ERROR, "Unexpected error."),
                    status_code=500,
                )
                await response(scope, receive, send)
                return
            message = getattr(error, "reason", str(error))
            response = JSONResponse(
                error_body(ApiErrorCode.BAD_USER_INPUT, message), status_code=status
            )
        else:
            if getattr(request.state, "database_unavailable", False):
                # A resolver met the database down: the answer is 503, never its driver text.
                response = _unavailable()
            elif _wants_graphql_response(request) and response.media_type == "application/json":
                response = _as_graphql_response(request, response)
        await response(scope, receive, send)


def _unavailable() -> Response:
    return JSONResponse(
        error_body("SERVICE_UNAVAILABLE", UNAVAILABLE_MESSAGE),
        status_code=503,
        headers={"Retry-After": "5"},
    )


def _as_graphql_response(request: Request, response: Response) -> Response:
    status = response.status_code
    if status == 200 and getattr(request.state, "graphql_failed", False):
        status = 400
    return Response(
        content=response.body,
        status_code=status,
        media_type=GRAPHQL_RESPONSE,
        headers={
            k: v
            for k, v in response.headers.items()
            if k.lower() not in {"content-type", "content-length"}
        },
    )
