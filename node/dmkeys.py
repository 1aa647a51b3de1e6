"""The node's direct-message keys: X25519 private keys in the node home, newest first.

The newest key is the one this node's profile publishes; messages sealed to an older key (sent
before a rotation reached the sender) still open while that key is kept. The file is written
0600 from its first byte, like the identity key.

A separate key rather than one derived from the Ed25519 identity key: `cryptography` has no
Ed25519-to-X25519 conversion, and a key of its own can rotate without changing the peer ID.
"""

from __future__ import annotations

from typing import Final

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from zion.node.errors import NodeError
from zion.node.home import NodeHome, check_private, write_secret
from zion.protocols import dm

#: Keys kept after rotations: mail sealed to a key older than these no longer opens.
MAX_DM_KEYS: Final = 8
KEYS_FILE: Final = "dm_keys"


class DmKeyring:
    def __init__(self, home: NodeHome) -> None:
        self._path = home.path / KEYS_FILE
        if not self._path.exists():
            self._keys = [dm.generate_key()]
            self._save()
        else:
            self._keys = self._load()

    @property
    def current(self) -> X25519PrivateKey:
        return self._keys[0]

    @property
    def current_public(self) -> bytes:
        return dm.raw_key(self.current.public_key())

    @property
    def keys(self) -> list[X25519PrivateKey]:
        """Newest first: what open_envelope tries."""
        return list(self._keys)

    def rotate(self) -> X25519PrivateKey:
        """A new current key; the oldest beyond MAX_DM_KEYS is forgotten."""
        self._keys = [dm.generate_key(), *self._keys][:MAX_DM_KEYS]
        self._save()
        return self.current

    def _load(self) -> list[X25519PrivateKey]:
        try:
            check_private(self._path)
            data = self._path.read_bytes()
        except OSError as exc:
            raise NodeError(f"cannot read {self._path}: {exc.strerror}") from None
        if not data or len(data) % dm.KEY_BYTES or len(data) > MAX_DM_KEYS * dm.KEY_BYTES:
            raise NodeError(f"{self._path} does not hold 1 to {MAX_DM_KEYS} X25519 keys")
        chunks = range(0, len(data), dm.KEY_BYTES)
        return [X25519PrivateKey.from_private_bytes(data[i : i + dm.KEY_BYTES]) for i in chunks]

    def _save(self) -> None:
        raw = b"".join(
            key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()) for key in self._keys
        )
        write_secret(self._path, raw)
