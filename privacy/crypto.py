"""Field encryption and blind indexes. Pure functions: no database, no key storage.

Ciphertext layout (all binary): ``0x01 | data key id (16 bytes) | key version (4 bytes, big
endian) | nonce (12 bytes) | AES-256-GCM ciphertext with tag``. The associated data binds a value
to its place, ``table|column|row id|key version``, so a ciphertext copied into another row or
column fails authentication instead of decrypting as someone else's data.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import struct
import uuid
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FORMAT_VERSION = 1
_HEADER = struct.Struct(">B16sI")
NONCE_BYTES = 12


class DecryptionError(ValueError):
    """A ciphertext failed authentication, or is not in our format. Carries no plaintext."""


@dataclass(frozen=True, slots=True)
class DataKeyMaterial:
    key_id: uuid.UUID
    version: int
    key: bytes


@dataclass(frozen=True, slots=True)
class Envelope:
    key_id: uuid.UUID
    version: int
    nonce: bytes
    body: bytes


def generate_data_key() -> bytes:
    """A fresh 256-bit data key; protects one subject's fields, never reused across subjects."""
    return AESGCM.generate_key(bit_length=256)


def associated_data(table: str, column: str, row_id: object, version: int) -> bytes:
    return f"{table}|{column}|{row_id}|{version}".encode()


def encrypt_field(
    material: DataKeyMaterial, *, table: str, column: str, row_id: object, plaintext: str
) -> bytes:
    """Encrypt one value for one row and column.

    Protects against reading the value from a database copy without the keyring, and against
    moving a ciphertext to another row, column or key version (GCM tag over the associated data).
    """
    nonce = secrets.token_bytes(NONCE_BYTES)
    aad = associated_data(table, column, row_id, material.version)
    body = AESGCM(material.key).encrypt(nonce, plaintext.encode("utf-8"), aad)
    return _HEADER.pack(FORMAT_VERSION, material.key_id.bytes, material.version) + nonce + body


def parse_envelope(blob: bytes) -> Envelope:
    if len(blob) < _HEADER.size + NONCE_BYTES + 16:
        raise DecryptionError("ciphertext is too short")
    fmt, key_id, version = _HEADER.unpack_from(blob)
    if fmt != FORMAT_VERSION:
        raise DecryptionError(f"unknown ciphertext format {fmt}")
    start = _HEADER.size
    return Envelope(
        key_id=uuid.UUID(bytes=key_id),
        version=version,
        nonce=blob[start : start + NONCE_BYTES],
        body=blob[start + NONCE_BYTES :],
    )


def decrypt_field(
    material: DataKeyMaterial, *, table: str, column: str, row_id: object, blob: bytes
) -> str:
    """Decrypt a value produced by `encrypt_field` for the same table, column and row."""
    envelope = parse_envelope(blob)
    if envelope.key_id != material.key_id or envelope.version != material.version:
        raise DecryptionError("ciphertext was written under another data key")
    aad = associated_data(table, column, row_id, envelope.version)
    try:
        return AESGCM(material.key).decrypt(envelope.nonce, envelope.body, aad).decode("utf-8")
    except Exception as exc:  # InvalidTag: tampered, moved, or the wrong key
        raise DecryptionError("ciphertext failed authentication") from exc


def blind_index(secret: bytes, *, kind: str, value: str) -> str:
    """Keyed HMAC-SHA256 of a normalised identifier, for equality lookups without plaintext.

    Protects against dictionary attacks on a database copy (phones are a small space: an unkeyed
    hash would be reversed in minutes); the key lives in the key provider, not the database.
    """
    return hmac.new(secret, f"{kind}|{value}".encode(), hashlib.sha256).hexdigest()


def wrap_aad(key_id: uuid.UUID, subject_id: uuid.UUID, version: int) -> bytes:
    """Binds a wrapped data key to its subject, so one subject's key cannot be swapped in."""
    return f"data_key|{key_id}|{subject_id}|{version}".encode()
