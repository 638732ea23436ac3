"""Signed export files (owned by privacy.exports)."""

from __future__ import annotations
