"""`node(id:)`: fetch any object by global id, with the same access rules as its owner."""

from __future__ import annotations

import uuid

from sqlmodel import SQLModel

from api.context import Info
from api.schema.access import visible_customer
from api.schema.common import from_global_id, to_global_id
from api.schema.node import Node
from graph import models
from loyalty import models as loyalty_models


async def resolve_node(info: Info, global_id: str) -> Node | None:
    from api.schema.customer.types import Customer, Identity
    from api.schema.events.types import EVENT_TYPE_NAMES, event_node
    from api.schema.influence.types import Referral, Review, SocialProfile
    from api.schema.loyalty.types import LedgerEntry, PointsReservation

    type_name, raw_id = from_global_id(global_id)
    if type_name == "Customer":
        customer = await visible_customer(info, raw_id)
        return None if customer is None else Customer.from_row(customer)
    table: type[SQLModel] | None = {  # type: ignore[assignment]
        "Identity": models.Identity,
        "Review": models.Review,
        "Referral": models.Referral,
        "SocialProfile": models.SocialProfile,
        "LedgerEntry": loyalty_models.LedgerEntry,
        "PointsReservation": loyalty_models.Reservation,
    }.get(type_name) or (models.Event if type_name in EVENT_TYPE_NAMES else None)
    if table is None:
        return None
    row = await info.context.loaders.row.load((table, raw_id))
    if row is None:
        return None
    owner_ref: uuid.UUID = getattr(row, "customer_id", None) or getattr(row, "referrer_id")  # noqa: B009
    owner = await visible_customer(info, owner_ref)
    if owner is None:
        return None
    if isinstance(row, models.Event):
        node = event_node(row)
        return node if node.id == to_global_id(type_name, raw_id) else None
    if isinstance(row, models.Identity):
        return Identity.from_row(row, owner.id)
    if isinstance(row, models.SocialProfile):
        return SocialProfile.from_row(row, owner.id)
    if isinstance(row, models.Review):
        return Review.from_row(row)
    if isinstance(row, loyalty_models.LedgerEntry):
        return LedgerEntry.from_row(row)
    if isinstance(row, loyalty_models.Reservation):
        return PointsReservation.from_row(row)
    assert isinstance(row, models.Referral)
    return Referral.from_row(row)
