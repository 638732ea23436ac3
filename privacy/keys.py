"""Root keys and application secrets behind one provider protocol.

The embedded default is a local keyring file (JSON, mode 0600) generated on first use. A KMS or
Vault provider implements the same protocol; nothing else in the code base sees key material
except through `KeyProvider`.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ROOT_KEY_BYTES = 32
SECRET_NAMES = ("blind_index", "jwt", "cursor", "audit_pseudonym", "export_signing")


class KeyProviderError(RuntimeError):
    """The provider cannot serve a key (missing, unreadable, or the wrong root key)."""


class KeyProvider(Protocol):
    def active_root_key_id(self) -> str: ...

    def wrap(self, plaintext_key: bytes, aad: bytes) -> tuple[str, bytes]:
        """Encrypt a data key under the active root key; returns (root key id, wrapped key)."""
        ...

    def unwrap(self, root_key_id: str, wrapped: bytes, aad: bytes) -> bytes: ...

    def secret(self, name: str) -> bytes:
        """A named 256-bit application secret (blind index, JWT, cursor signing)."""
        ...

    def rotate_root(self) -> str:
        """Create a new root key and make it the active one; older roots stay for unwrapping
        until `retire_roots` removes those no data key uses any more. Returns the new id."""
        ...

    def retire_roots(self, keep: set[str]) -> list[str]:
        """Remove every root key except the active one and `keep`; returns the removed ids."""
        ...


class LocalKeyring:
    """File-backed provider for the embedded default and tests.

    Protects data at rest against a copy of the database alone (the keyring is a separate file
    kept outside the database); it does not protect against someone holding both files, which is
    what a KMS provider is for.
    """

    def __init__(self, path: Path, *, create: bool = True) -> None:
        self.path = path
        if not create and not path.exists():
            # A command that only reads must not invent a keyring: a new one would make every
            # genuine signature look foreign and every ciphertext unreadable.
            raise KeyProviderError(
                f"no keyring at {path}: set LOYALGRAPH_HOME (or LOYALGRAPH_KEYRING) to the data "
                "home that holds it (see `loyalgraph doctor`)"
            )
        self._data = self._load_or_create(path)
        self._mtime = path.stat().st_mtime_ns

    def _refresh(self) -> None:
        """Pick up a rotation done by another process (`loyalgraph keys rotate-root` while the
        server runs): a changed file is read again, so no restart is needed."""
        try:
            mtime = self.path.stat().st_mtime_ns
        except OSError:
            return
        if mtime != self._mtime:
            self._data = self._load_or_create(self.path)
            self._mtime = mtime

    @staticmethod
    def _load_or_create(path: Path) -> dict[str, object]:
        if path.exists():
            try:
                data: dict[str, object] = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise KeyProviderError(f"keyring {path} is unreadable: {exc}") from exc
            return _add_missing_secrets(path, data)
        root_id = "root-1"
        data = {
            "version": 1,
            "active_root": root_id,
            "roots": {root_id: _b64(secrets.token_bytes(ROOT_KEY_BYTES))},
            "secrets": {name: _b64(secrets.token_bytes(32)) for name in SECRET_NAMES},
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2)
        return data

    def _roots(self) -> dict[str, str]:
        roots = self._data["roots"]
        assert isinstance(roots, dict)
        return roots

    def active_root_key_id(self) -> str:
        self._refresh()
        return str(self._data["active_root"])

    def _root_key(self, root_key_id: str) -> bytes:
        encoded = self._roots().get(root_key_id)
        if encoded is None:
            self._refresh()
            encoded = self._roots().get(root_key_id)
        if encoded is None:
            raise KeyProviderError(f"root key {root_key_id!r} is not in the keyring")
        return base64.b64decode(encoded)

    def wrap(self, plaintext_key: bytes, aad: bytes) -> tuple[str, bytes]:
        root_id = self.active_root_key_id()
        nonce = secrets.token_bytes(12)
        return root_id, nonce + AESGCM(self._root_key(root_id)).encrypt(nonce, plaintext_key, aad)

    def unwrap(self, root_key_id: str, wrapped: bytes, aad: bytes) -> bytes:
        nonce, body = wrapped[:12], wrapped[12:]
        return AESGCM(self._root_key(root_key_id)).decrypt(nonce, body, aad)

    def secret(self, name: str) -> bytes:
        table = self._data["secrets"]
        assert isinstance(table, dict)
        if name not in table:
            raise KeyProviderError(f"no secret named {name!r} in the keyring")
        return base64.b64decode(table[name])

    def rotate_root(self) -> str:
        self._refresh()
        roots = self._roots()
        number = 1 + max((int(key.rsplit("-", 1)[-1]) for key in roots), default=0)
        root_id = f"root-{number}"
        roots[root_id] = _b64(secrets.token_bytes(ROOT_KEY_BYTES))
        self._data["active_root"] = root_id
        self._save()
        return root_id

    def retire_roots(self, keep: set[str]) -> list[str]:
        self._refresh()
        roots = self._roots()
        active = self.active_root_key_id()
        gone = sorted(key for key in roots if key != active and key not in keep)
        for key in gone:
            del roots[key]
        if gone:
            self._save()
        return gone

    def _save(self) -> None:
        write_keyring(self.path, self._data)
        self._mtime = self.path.stat().st_mtime_ns


def _add_missing_secrets(path: Path, data: dict[str, object]) -> dict[str, object]:
    """A keyring written by an older release lacks the newer secrets: add them, once."""
    table = data.get("secrets")
    if not isinstance(table, dict):
        raise KeyProviderError(f"keyring {path} has no secrets table")
    missing = [name for name in SECRET_NAMES if name not in table]
    if missing:
        for name in missing:
            table[name] = _b64(secrets.token_bytes(32))
        write_keyring(path, data)
    return data


def write_keyring(path: Path, data: dict[str, object]) -> None:
    """Replace the keyring file atomically (write a 0600 sibling, then rename over it)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")
