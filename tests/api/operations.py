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
