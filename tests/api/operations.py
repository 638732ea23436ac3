"""GraphQL operations shared by API tests (module constants, as Saleor does)."""

REGISTER = """
mutation Register($input: CustomerRegisterInput!) {
  customerRegister(input: $input) {
    created
    customer { id status identities { kind verified } }
    errors { code message field }
  }
}
"""

PURCHASE = """
mutation Purchase($input: PurchaseRecordInput!) {
  purchaseRecord(input: $input) {
    replayed
    purchase { id total { amountMinor currency } lines { sku quantity } }
    errors { code message field }
  }
}
"""

CUSTOMER_BY_IDENTIFIER = """
query ByIdentifier($kind: IdentityKind!, $value: String!) {
  customerByIdentifier(kind: $kind, value: $value) { id }
}
"""


def purchase_input(
    customer_id: str,
    key: str,
    *,
    price: int = 10_000,
    quantity: int = 2,
    sku: str = "SKU-1",
    channel: str = "POS",
) -> dict[str, object]:
    return {
        "customerId": customer_id,
        "channel": channel,
        "idempotencyKey": key,
        "lines": [{"sku": sku, "category": "shoes", "quantity": quantity, "unitPriceMinor": price}],
    }


# --- loyalty ---------------------------------------------------------------------------------

LOYALTY_ACCOUNT = """
query LoyaltyAccount($id: ID!) {
  customer(id: $id) {
    loyalty {
      balance pendingBalance heldPoints
      tier { code name multiplier }
      tierProgress { qualifying nextTier { code name threshold } remaining }
      expiringSoon(days: 365) { points firstExpiry }
      ledger(first: 100) { edges { node { id kind points ruleCode reservationId purchaseId } } }
    }
  }
}
"""

LEDGER_PAGE = """
query Ledger($id: ID!, $first: Int, $after: String) {
  customer(id: $id) {
    loyalty {
      ledger(first: $first, after: $after) {
        edges { node { id kind points } }
        pageInfo { hasNextPage endCursor }
      }
    }
  }
}
"""

POINTS_ADJUST = """
mutation PointsAdjust($input: PointsAdjustInput!) {
  pointsAdjust(input: $input) {
    entry { id kind points actor reason }
    account { balance }
    errors { code message field }
  }
}
"""

POINTS_REDEEM = """
mutation PointsRedeem($input: PointsRedeemInput!) {
  pointsRedeem(input: $input) {
    replayed
    entry { id kind points purchaseId }
    account { balance }
    errors { code message field }
  }
}
"""

POINTS_RESERVE = """
mutation PointsReserve($input: PointsReserveInput!) {
  pointsReserve(input: $input) {
    replayed
    reservation { id status points orderTotalMinor expiresAt }
    account { balance heldPoints }
    errors { code message field }
  }
}
"""

POINTS_COMMIT = """
mutation PointsCommit($input: PointsCommitInput!) {
  pointsCommit(input: $input) {
    replayed
    reservation { id status points purchaseId closedAt }
    account { balance heldPoints }
    errors { code message field }
  }
}
"""

POINTS_CANCEL = """
mutation PointsCancel($input: PointsCancelInput!) {
  pointsCancel(input: $input) {
    replayed
    reservation { id status }
    account { balance heldPoints }
    errors { code message field }
  }
}
"""

LOYALTY_PROGRAM = """
query LoyaltyProgram {
  loyaltyProgram {
    code version name currency timezone pendingDays returns
    earn { points perMinor }
    rules { code description priority multiplier categories skus channels tiers validFrom validTo stop }
    bonuses { code event points pending }
    caps { perDay perMonth }
    expiry { policy days months years }
    redemption { pointValueMinor maxSharePercent minBalance holdMinutes }
    tiers { metric windowDays levels { code name threshold multiplier } }
    referral { referrerPoints refereePoints maxRewardedPerReferrer pending }
  }
}
"""

POINTS_QUOTE = """
query PointsQuote($input: PointsQuoteInput!) {
  pointsQuote(input: $input) {
    earnPoints appliedRules maxRedeemPoints pointValueMinor currency balance
  }
}
"""


def redeem_input(
    customer_id: str, points: int, key: str, *, total: int = 1_000_000, **extra: object
) -> dict[str, object]:
    return {
        "customerId": customer_id,
        "points": points,
        "idempotencyKey": key,
        "orderTotalMinor": total,
        **extra,
    }


def reserve_input(
    customer_id: str, points: int, key: str, *, total: int = 100_000
) -> dict[str, object]:
    return {
        "customerId": customer_id,
        "points": points,
        "idempotencyKey": key,
        "orderTotalMinor": total,
    }
