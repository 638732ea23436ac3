"""Data subject request tables (owned by privacy.requests)."""

from __future__ import annotations
