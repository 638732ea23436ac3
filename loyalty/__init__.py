"""Points ledger, earn rules, redemption and tiers (not built yet: see issue 3)."""
