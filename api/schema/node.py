"""The Relay `Node` interface and generic keyset connections."""

from __future__ import annotations

from collections.abc import Sequence
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


def connection(nodes: Sequence[T], cursors: Sequence[str], *, more: bool) -> Connection[T]:
    """A page of nodes with their keyset cursors; `more` says whether a next page exists."""
    return Connection(
        edges=[Edge(cursor=c, node=n) for c, n in zip(cursors, nodes, strict=True)],
        page_info=PageInfo(has_next_page=more, end_cursor=cursors[-1] if cursors else None),
    )
