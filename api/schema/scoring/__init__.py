"""GraphQL of scoring: Customer.scores and Customer.influence, topInfluencers, scoresRefresh."""
