"""Training, evaluation and promotion in MLflow (not built yet: see issue 5)."""
