"""Training, evaluation against the classic baselines, MLflow logging and promotion."""
