"""GraphQL for privacy: consent, data subject requests, compliance exports."""
