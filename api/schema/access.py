"""Authorization checks shared by resolvers. Deny by default; a customer sees only themself."""

from __future__ import annotations

import uuid

from api.auth import PROFILE_READERS, STAFF_ROLES, Role
from api.context import Info
from api.schema.common import require
from graph.models import Customer


def require_roles(info: Info, *roles: Role) -> None:
    require(info.context.principal.has(*roles), f"this needs one of the roles: {', '.join(roles)}")


def require_roles_if(info: Info, condition: bool, *roles: Role) -> None:
    """Some inputs need more than the mutation itself: a customer may link an identifier to
    themself, but only an app or staff (after confirming it) may call it verified."""
    if condition:
        require(info.context.principal.has(*roles), "only apps and staff may assert this")


def is_self(info: Info, owner_id: uuid.UUID) -> bool:
    principal = info.context.principal
    return principal.has(Role.CUSTOMER) and info.context.owner_id == owner_id


def ensure_can_read(info: Info, customer: Customer) -> None:
    principal = info.context.principal
    require(
        principal.has(*STAFF_ROLES, Role.APP) or is_self(info, customer.id),
        "you may not read this customer",
    )


def may_read_personal(info: Info, owner_id: uuid.UUID) -> bool:
    return info.context.principal.has(*PROFILE_READERS) or is_self(info, owner_id)


def require_personal(info: Info, owner_id: uuid.UUID) -> None:
    """Call before returning this customer's decrypted personal data: refuses a caller who may
    not see it, and notes a staff read for the audit log (written before the response leaves)."""
    require(may_read_personal(info, owner_id), "your role may not read personal data")
    if not is_self(info, owner_id):
        info.context.personal_reads.add(owner_id)


async def visible_customer(info: Info, customer_id: uuid.UUID) -> Customer | None:
    """The (surviving) customer if it exists; FORBIDDEN if the caller may not read it."""
    customer = await info.context.loaders.customer.load(customer_id)
    if customer is not None:
        ensure_can_read(info, customer)
    return customer


async def require_acting_for(info: Info, customer_id: uuid.UUID, *roles: Role) -> None:
    """A customer acts only for themself; other principals need one of `roles`."""
    principal = info.context.principal
    if principal.has(Role.CUSTOMER) and not principal.has(*roles):
        customer = await info.context.loaders.customer.load(customer_id)
        require(
            customer is not None and is_self(info, customer.id), "customers act only for themselves"
        )
        return
    require_roles(info, *roles)
