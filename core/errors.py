"""Base errors shared by every domain.

A DomainError is an expected business failure: the API turns it into a payload `UserError`
with the domain's code enum value, a message that never contains personal data, and the path
of the input field at fault.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum


class DomainError(Exception):
    def __init__(self, code: StrEnum, message: str, field: Sequence[str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = list(field) if field is not None else None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!s}, {self.message!r}, field={self.field!r})"
