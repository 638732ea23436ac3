"""Destruction certificate tables (owned by privacy.erasure)."""

from __future__ import annotations
