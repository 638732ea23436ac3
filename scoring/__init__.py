"""Point-in-time features and model serving (not built yet: see issue 5)."""
