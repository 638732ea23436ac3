"""Customer queries: node, customer, customerByIdentifier, customers, me."""

from __future__ import annotations

import datetime as dt

import strawberry
from sqlalchemy import ColumnElement
from sqlmodel import col

from api.auth import STAFF_ROLES, Role
from api.context import Info
from api.schema.access import ensure_can_read, require_roles, visible_customer
from api.schema.common import (
    DEFAULT_PAGE,
    ApiErrorCode,
    api_error,
    from_global_id,
    page_size,
)
from api.schema.customer.types import Customer
from api.schema.node import Connection, Node, connection
from api.schema.nodes import resolve_node
from api.schema.scoring.enums import RiskBand, ValueSegment
from api.schema.transaction import as_graphql_error
from core.errors import DomainError
from graph import models, queries
from graph.customers import find_by_identifier
from graph.enums import Channel, CustomerStatus, IdentityKind
from scoring.queries import score_conditions


@strawberry.input
class CustomerFilter:
    status: CustomerStatus | None = None
    registered_channel: Channel | None = None
    created_after: dt.datetime | None = None
    created_before: dt.datetime | None = None
    churn_risk_at_least: RiskBand | None = strawberry.field(
        default=None, description="Only customers whose churn risk band is this or higher."
    )
    value_segment: ValueSegment | None = strawberry.field(
        default=None, description="Only customers in this predicted-value segment."
    )
    influencer: bool | None = strawberry.field(
        default=None, description="Only influencers (true) or only the others (false)."
    )

    def score_conditions(self) -> tuple[ColumnElement[bool], ...]:
        return tuple(
            score_conditions(
                col(models.Customer.id),
                churn_risk_at_least=self.churn_risk_at_least,
                value_segment=self.value_segment,
                influencer=self.influencer,
            )
        )


@strawberry.type
class CustomerQuery:
    @strawberry.field(description="Any object by its global id.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        return await resolve_node(info, id)

    @strawberry.field(description="A customer by id; a merged customer's id gives its survivor.")
    async def customer(self, info: Info, id: strawberry.ID) -> Customer | None:
        row = await visible_customer(info, from_global_id(id, expected="Customer")[1])
        return None if row is None else Customer.from_row(row)

    @strawberry.field(description="The customer holding an identifier, in any spelling.")
    async def customer_by_identifier(
        self, info: Info, kind: IdentityKind, value: str, source_system: str | None = None
    ) -> Customer | None:
        require_roles(info, *STAFF_ROLES, Role.APP)
        try:
            row = await find_by_identifier(
                info.context.session,
                info.context.cipher,
                kind=kind,
                value=value,
                source_system=source_system,
            )
        except DomainError as error:
            raise as_graphql_error(error) from None
        if row is None:
            return None
        ensure_can_read(info, row)
        return Customer.from_row(row)

    @strawberry.field(description="Customers in registration order (staff only).")
    async def customers(
        self,
        info: Info,
        first: int | None = DEFAULT_PAGE,
        after: str | None = None,
        filter: CustomerFilter | None = None,
    ) -> Connection[Customer]:
        require_roles(info, *STAFF_ROLES)
        size = page_size(first)
        cursors = info.context.cursors
        f = filter or CustomerFilter()
        if f.status == CustomerStatus.MERGED:
            raise api_error(
                ApiErrorCode.BAD_USER_INPUT,
                "merged customers are listed through their survivor; query them by id",
            )
        rows = await queries.customers_page(
            info.context.session,
            first=size,
            after=cursors.decode("customer", after),
            filter=queries.CustomerFilter(
                status=f.status,
                registered_channel=f.registered_channel,
                created_after=f.created_after,
                created_before=f.created_before,
                extra=f.score_conditions(),
            ),
        )
        page = rows[:size]
        return connection(
            [Customer.from_row(row) for row in page],
            [cursors.encode("customer", row.created_at, row.id) for row in page],
            more=len(rows) > size,
        )

    @strawberry.field(description="The signed-in customer (customer tokens only).")
    async def me(self, info: Info) -> Customer | None:
        require_roles(info, Role.CUSTOMER)
        owner = info.context.owner_id
        row = None if owner is None else await info.context.loaders.customer.load(owner)
        return None if row is None else Customer.from_row(row)
