import pytest

from core.errors import DomainError
from graph.enums import IdentityKind
from graph.errors import GraphErrorCode
from graph.identity import normalise


@pytest.mark.parametrize("raw", ["8 (916) 123-45-67", "+79161234567", "+7 916 123 45 67", "89161234567"])
def test_russian_phone_spellings_normalise_to_e164(raw):
    assert normalise(IdentityKind.PHONE, raw) == "+79161234567"


@pytest.mark.parametrize("raw", ["12", "abc-def", "+7 000 000 00 00"])
def test_malformed_phone_is_a_typed_error_without_the_value(raw):
    with pytest.raises(DomainError) as caught:
        normalise(IdentityKind.PHONE, raw, field=("phone",))
    assert caught.value.code is GraphErrorCode.INVALID_PHONE
    assert caught.value.field == ["phone"]
    assert raw not in caught.value.message


def test_email_is_normalised_and_validated():
    assert normalise(IdentityKind.EMAIL, " Ivan.Petrov@Example.COM ") == "ivan.petrov@example.com"
    with pytest.raises(DomainError) as caught:
        normalise(IdentityKind.EMAIL, "ivan@@example")
    assert caught.value.code is GraphErrorCode.INVALID_EMAIL


def test_card_and_external_id():
    assert normalise(IdentityKind.LOYALTY_CARD, "1234 5678-9012") == "123456789012"
    assert normalise(IdentityKind.EXTERNAL_ID, " A-17 ", source_system="CRM") == "crm:A-17"
    with pytest.raises(DomainError):
        normalise(IdentityKind.EXTERNAL_ID, "A-17")
