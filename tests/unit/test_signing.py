"""Detached Ed25519 signatures: a signed file verifies; one changed byte, a changed signature,
changed metadata or a foreign key does not."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from privacy.keys import LocalKeyring
from privacy.signing import (
    SignatureFileError,
    fingerprint,
    public_key_bytes,
    sign_file,
    signature_path,
    verify_file,
)

CONTENT = b"change_id,purpose,status\n1,MARKETING,GRANTED\n2,PROFILING,WITHDRAWN\n"


@pytest.fixture
def keys(tmp_path: Path) -> LocalKeyring:
    return LocalKeyring(tmp_path / "keyring.json")


@pytest.fixture
def signed(tmp_path: Path, keys: LocalKeyring) -> Path:
    path = tmp_path / "export.csv"
    path.write_bytes(CONTENT)
    sign_file(path, keys, metadata={"rows": 2, "kind": "consent_audit"})
    return path


def _edit_signature(path: Path, change) -> None:
    sig = signature_path(path)
    document = json.loads(sig.read_text())
    change(document)
    sig.write_text(json.dumps(document))


def test_a_signed_file_verifies_and_carries_its_metadata(signed, keys):
    result = verify_file(signed, keys)

    assert result.ok, result.reason
    assert result.metadata == {"rows": 2, "kind": "consent_audit"}
    assert result.key_fingerprint == fingerprint(public_key_bytes(keys))
    document = json.loads(signature_path(signed).read_text())
    assert document["algorithm"] == "Ed25519"
    assert document["signed"]["file_name"] == "export.csv"
    assert base64.b64decode(document["public_key"]) == public_key_bytes(keys)


def test_the_signing_key_is_derived_from_the_keyring_secret(tmp_path, keys):
    again = LocalKeyring(keys.path)  # the same keyring file, loaded anew
    other = LocalKeyring(tmp_path / "other.json")

    assert public_key_bytes(again) == public_key_bytes(keys)
    assert public_key_bytes(other) != public_key_bytes(keys)


@pytest.mark.parametrize("position", [0, len(CONTENT) // 2, len(CONTENT) - 1])
def test_one_changed_byte_fails(signed, keys, position):
    data = bytearray(signed.read_bytes())
    data[position] ^= 0x01
    signed.write_bytes(bytes(data))

    result = verify_file(signed, keys)

    assert not result.ok
    assert "changed" in result.reason


def test_an_appended_row_fails(signed, keys):
    signed.write_bytes(CONTENT + b"3,MARKETING,GRANTED\n")

    assert not verify_file(signed, keys).ok


def test_a_changed_signature_fails(signed, keys):
    def flip(document):
        raw = bytearray(base64.b64decode(document["signature"]))
        raw[5] ^= 0x01
        document["signature"] = base64.b64encode(bytes(raw)).decode()

    _edit_signature(signed, flip)

    result = verify_file(signed, keys)
    assert not result.ok and "does not match" in result.reason


def test_changed_metadata_fails(signed, keys):
    _edit_signature(signed, lambda document: document["signed"]["metadata"].update(rows=3))

    assert not verify_file(signed, keys).ok


def test_a_file_re_signed_with_a_foreign_key_fails(tmp_path, signed, keys):
    # Someone edits the file and signs it again with their own key: mathematically valid,
    # but not by us.
    signed.write_bytes(CONTENT.replace(b"WITHDRAWN", b"GRANTED"))
    sign_file(signed, LocalKeyring(tmp_path / "intruder.json"))

    result = verify_file(signed, keys)

    assert not result.ok and "another key" in result.reason
    assert verify_file(signed, LocalKeyring(tmp_path / "intruder.json")).ok


def test_a_published_public_key_is_enough_to_verify(signed, keys, tmp_path):
    assert verify_file(signed, public_key=public_key_bytes(keys)).ok
    other = public_key_bytes(LocalKeyring(tmp_path / "other.json"))
    assert not verify_file(signed, public_key=other).ok


def test_the_signature_of_another_file_fails(tmp_path, signed, keys):
    other = tmp_path / "other.csv"
    other.write_bytes(b"change_id\n")
    sign_file(other, keys)

    result = verify_file(signed, keys, signature_path=signature_path(other))

    assert not result.ok


def test_by_default_the_configured_keyring_verifies(signed, keys, monkeypatch):
    monkeypatch.setenv("LOYALGRAPH_KEYRING", str(keys.path))

    assert verify_file(signed).ok


def test_a_missing_or_garbled_signature_file_is_an_error(signed, keys):
    sig = signature_path(signed)
    sig.write_text("not json")
    with pytest.raises(SignatureFileError):
        verify_file(signed, keys)
    sig.unlink()
    with pytest.raises(SignatureFileError):
        verify_file(signed, keys)


def test_an_incomplete_signature_document_fails(signed, keys):
    _edit_signature(signed, lambda document: document.pop("signature"))

    result = verify_file(signed, keys)
    assert not result.ok and "incomplete" in result.reason
