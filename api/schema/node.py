"""The Relay `Node` interface and generic keyset connections."""

from __future__ import annotations

from typing import Generic, TypeVar

import strawberry

from api.schema.common import PageInfo

T = TypeVar("T")


@strawberry.interface(description="An object with a global id, fetchable with `node(id:)`.")
class Node:
    id: strawberry.ID


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo

    @strawberry.field
    def nodes(self) -> list[T]:
        return [edge.node for edge in self.edges]
