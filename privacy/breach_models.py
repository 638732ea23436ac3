"""Breach register and key re-encryption jobs (owned by privacy.breaches, privacy.rotation)."""

from __future__ import annotations
