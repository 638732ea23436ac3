"""Probabilistic identity resolution: the review queue and decisions (operators, admins)."""
