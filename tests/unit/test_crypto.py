"""Field encryption binds a ciphertext to its place; blind indexes are keyed."""

import uuid

import pytest

from privacy.crypto import (
    DataKeyMaterial,
    DecryptionError,
    blind_index,
    decrypt_field,
    encrypt_field,
    generate_data_key,
)
from privacy.keys import LocalKeyring


def _material() -> DataKeyMaterial:
    return DataKeyMaterial(key_id=uuid.uuid4(), version=1, key=generate_data_key())


def test_roundtrip_and_no_plaintext_in_ciphertext():
    material, row = _material(), uuid.uuid4()
    blob = encrypt_field(material, table="customer", column="first_name_ct", row_id=row, plaintext="Анна")
    assert "Анна".encode() not in blob
    assert decrypt_field(material, table="customer", column="first_name_ct", row_id=row, blob=blob) == "Анна"


@pytest.mark.parametrize("where", [("customer", "last_name_ct", None), ("identity", "first_name_ct", None), ("customer", "first_name_ct", "other-row")])
def test_ciphertext_moved_to_another_place_fails(where):
    material, row = _material(), uuid.uuid4()
    blob = encrypt_field(material, table="customer", column="first_name_ct", row_id=row, plaintext="Анна")
    table, column, other_row = where
    with pytest.raises(DecryptionError):
        decrypt_field(material, table=table, column=column, row_id=other_row or row, blob=blob)


def test_tampered_ciphertext_fails():
    material, row = _material(), uuid.uuid4()
    blob = bytearray(encrypt_field(material, table="t", column="c", row_id=row, plaintext="x"))
    blob[-1] ^= 1
    with pytest.raises(DecryptionError):
        decrypt_field(material, table="t", column="c", row_id=row, blob=bytes(blob))


def test_blind_index_depends_on_key_and_kind():
    one, two = b"k" * 32, b"j" * 32
    assert blind_index(one, kind="PHONE", value="+79161234567") == blind_index(one, kind="PHONE", value="+79161234567")
    assert blind_index(one, kind="PHONE", value="+79161234567") != blind_index(two, kind="PHONE", value="+79161234567")
    assert blind_index(one, kind="PHONE", value="x") != blind_index(one, kind="EMAIL", value="x")


def test_keyring_is_created_private_and_reloaded(tmp_path):
    path = tmp_path / "keyring.json"
    first = LocalKeyring(path)
    assert path.stat().st_mode & 0o777 == 0o600
    root_id, wrapped = first.wrap(b"secret-data-key", b"aad")
    assert LocalKeyring(path).unwrap(root_id, wrapped, b"aad") == b"secret-data-key"
    assert LocalKeyring(path).secret("jwt") == first.secret("jwt")
