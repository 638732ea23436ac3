"""Detached Ed25519 signatures for export files.

A signed file `F` has a sibling `F.sig`, a small JSON document:

    {"format": "loyalgraph-signature/1", "algorithm": "Ed25519",
     "public_key": <b64 raw public key>, "key_fingerprint": <sha256 hex of it>,
     "signed": {"file_name", "size", "sha256", "created_at", "metadata"},
     "signature": <b64 Ed25519 signature over the canonical JSON of "signed">}

The signature covers the file's SHA-256 together with its metadata (what was exported, with
which filters, how many rows, the audit log head at the time), so neither the bytes nor the
description of the file can be changed without the check failing. The file is read in chunks:
signing and verifying a multi-gigabyte export takes constant memory.

The private key is derived from the key provider's `export_signing` secret (32 bytes are an
Ed25519 seed); it never leaves the process and is never written anywhere. The public key can be
published, so that anyone holding it (an auditor, a regulator) can check a file offline with
`verify_file(path, public_key=...)`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from core.clock import as_utc, utcnow
from privacy.keys import KeyProvider

FORMAT = "loyalgraph-signature/1"
ALGORITHM = "Ed25519"
SUFFIX = ".sig"
SECRET_NAME = "export_signing"  # noqa: S105 - the name of a keyring entry, not a secret
_CHUNK = 1 << 20


class SignatureFileError(ValueError):
    """There is no signature file where one was expected, or it cannot be read at all."""


@dataclass(frozen=True, slots=True)
class Verification:
    """The outcome of `verify_file`: `ok`, or the first reason it is not."""

    ok: bool
    reason: str
    sha256: str | None = None
    key_fingerprint: str | None = None
    created_at: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


def signature_path(path: Path) -> Path:
    """Where the detached signature of `path` lives: `path` + `.sig`."""
    return path.with_name(path.name + SUFFIX)


_sibling = signature_path  # `verify_file` has a parameter of the same name


def private_key(keys: KeyProvider) -> Ed25519PrivateKey:
    """The export signing key, derived from the provider's `export_signing` secret.

    Deriving it (instead of storing a second key file) means the keyring stays the one secret
    to protect and back up; a KMS provider serves the seed through the same protocol.
    """
    seed = keys.secret(SECRET_NAME)
    if len(seed) != 32:
        raise ValueError("the export signing secret must be 32 bytes")
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key_bytes(keys: KeyProvider) -> bytes:
    """The raw 32-byte public key matching `private_key(keys)`: safe to publish."""
    return private_key(keys).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def fingerprint(public_key: bytes) -> str:
    """A short, stable name for a public key (SHA-256 of its raw bytes, hex)."""
    return hashlib.sha256(public_key).hexdigest()


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB chunks (constant memory for any size)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _canonical(value: Mapping[str, Any]) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode()


def sign_file(
    path: Path,
    keys: KeyProvider,
    *,
    metadata: Mapping[str, Any] | None = None,
    created_at: datetime | None = None,
) -> Path:
    """Write `path.sig` beside `path` and return its path.

    Protects against undetected changes to the file after it left us (a changed byte, a row
    added or removed, a file swapped for another export) and against a forged origin: only the
    holder of the keyring can produce a signature that verifies under our public key. It does
    not hide the file's contents: exports are protected in transit and at rest separately.
    """
    key = private_key(keys)
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    signed = {
        "file_name": path.name,
        "size": path.stat().st_size,
        "sha256": file_sha256(path),
        "created_at": as_utc(created_at or utcnow()).isoformat(),
        "metadata": dict(metadata or {}),
    }
    document = {
        "format": FORMAT,
        "algorithm": ALGORITHM,
        "public_key": base64.b64encode(public).decode("ascii"),
        "key_fingerprint": fingerprint(public),
        "signed": signed,
        "signature": base64.b64encode(key.sign(_canonical(signed))).decode("ascii"),
    }
    target = signature_path(path)
    tmp = target.with_name(target.name + ".part")
    tmp.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(target)
    return target


def _read_signature(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise SignatureFileError(f"no signature file at {path}")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SignatureFileError(f"signature file {path} is not readable JSON: {exc}") from None
    if not isinstance(document, dict):
        raise SignatureFileError(f"signature file {path} is not a signature document")
    return document


def _failed(reason: str, document: Mapping[str, Any] | None = None) -> Verification:
    signed = document.get("signed") if document else None
    signed = signed if isinstance(signed, dict) else {}
    metadata = signed.get("metadata")
    return Verification(
        ok=False,
        reason=reason,
        sha256=signed.get("sha256") if isinstance(signed.get("sha256"), str) else None,
        key_fingerprint=document.get("key_fingerprint") if document else None,
        created_at=signed.get("created_at") if isinstance(signed.get("created_at"), str) else None,
        metadata=metadata if isinstance(metadata, dict) else {},
    )


def _decode_b64(value: object) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def _trusted_key(keys: KeyProvider | None, public_key: bytes | None) -> bytes:
    if public_key is not None:
        return public_key
    if keys is None:
        # The default: this installation's keyring, as configured in the environment.
        from core.settings import Settings
        from privacy.keys import LocalKeyring

        keys = LocalKeyring(Settings.from_env().keyring_path)
    return public_key_bytes(keys)


def verify_file(
    path: Path,
    keys: KeyProvider | None = None,
    signature_path: Path | None = None,
    *,
    public_key: bytes | None = None,
) -> Verification:
    """Check `path` against its detached signature (`path.sig` unless given).

    The trusted public key is `public_key` when given, else the one derived from `keys`, else
    the one of the keyring configured in the environment. The public key written inside the
    signature file is never trusted on its own: a file re-signed with someone else's key fails
    ("signed by another key") even though that signature is mathematically valid.

    Fails on: one changed byte of the file (its SHA-256 no longer matches), a changed signature
    or changed metadata (the Ed25519 check fails), a foreign signing key. Raises
    `SignatureFileError` only when there is no signature file to check, or it is not JSON.
    """
    sig_path = signature_path if signature_path is not None else _sibling(path)
    document = _read_signature(sig_path)
    if document.get("format") != FORMAT or document.get("algorithm") != ALGORITHM:
        return _failed("not a loyalgraph Ed25519 signature", document)
    signed = document.get("signed")
    signature = _decode_b64(document.get("signature"))
    embedded = _decode_b64(document.get("public_key"))
    if not isinstance(signed, dict) or signature is None or embedded is None:
        return _failed("the signature file is incomplete", document)
    trusted = _trusted_key(keys, public_key)
    if embedded != trusted:
        return _failed(
            f"signed by another key ({fingerprint(embedded)[:16]}), "
            f"not ours ({fingerprint(trusted)[:16]})",
            document,
        )
    try:
        Ed25519PublicKey.from_public_bytes(trusted).verify(signature, _canonical(signed))
    except (InvalidSignature, ValueError, TypeError):
        return _failed("the signature does not match the signed data", document)
    actual = file_sha256(path)
    if actual != signed.get("sha256"):
        return _failed("the file was changed after it was signed (SHA-256 differs)", document)
    if path.stat().st_size != signed.get("size"):  # pragma: no cover - implied by the hash
        return _failed("the file's size differs from the signed size", document)
    return Verification(
        ok=True,
        reason="signature valid",
        sha256=actual,
        key_fingerprint=fingerprint(trusted),
        created_at=str(signed.get("created_at")),
        metadata=dict(signed.get("metadata") or {}),
    )
