"""Point-in-time features, the influence score, model loading by alias, batch and online scoring."""
