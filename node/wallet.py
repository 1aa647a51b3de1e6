"""Wallets: Ethereum keys of the member, kept as eth-account encrypted keystores (scrypt).

``<home>/wallets/<address>.json``, mode 0600, written atomically and never overwritten; the
first wallet becomes the default (``<home>/wallets/default`` names it). Passwords come from
the caller (a prompt, a file or ZION_WALLET_PASSWORD) and are never logged or stored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from zion.node.errors import NodeError
from zion.node.home import NodeHome, check_private, write_secret

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

PASSWORD_ENV: Final = "ZION_WALLET_PASSWORD"  # noqa: S105 (the variable's name, no secret)
#: Shorter passwords are refused when a keystore is created.
MIN_PASSWORD_CHARS: Final = 8
_DEFAULT: Final = "default"


@dataclass(frozen=True)
class WalletInfo:
    address: str
    path: Path
    default: bool


class Wallets:
    def __init__(self, home: NodeHome) -> None:
        self._dir = home.wallets_dir

    def list(self) -> list[WalletInfo]:
        if not self._dir.is_dir():
            return []
        default = self.default_address()
        return [
            WalletInfo(path.stem, path, path.stem == default)
            for path in sorted(self._dir.glob("0x*.json"))
        ]

    def default_address(self) -> str | None:
        marker = self._dir / _DEFAULT
        return marker.read_text().strip() if marker.exists() else None

    def create(self, password: str) -> str:
        return self._store(_account().create(), password)

    def import_key(self, private_key: str, password: str) -> str:
        try:
            account = _account().from_key(private_key.strip())
        except (ValueError, TypeError):
            raise NodeError("that is not an Ethereum private key (64 hex digits)") from None
        return self._store(account, password)

    def import_keystore(self, keystore: Path, password: str) -> str:
        """Copy a keystore in once its password opens it (it stays encrypted as it was)."""
        try:
            data = json.loads(keystore.read_text())
        except (OSError, ValueError) as exc:
            raise NodeError(f"cannot read keystore {keystore}: {exc}") from None
        account = _account().from_key(_decrypt(data, password, str(keystore)))
        return self._write(account.address, json.dumps(data).encode())

    def unlock(self, password: str, address: str | None = None) -> LocalAccount:
        """The wallet's key, decrypted (NodeError for a wrong password or unknown wallet)."""
        from eth_utils.address import is_address, to_checksum_address  # deferred: see _account()

        chosen = address or self.default_address()
        if chosen is None:
            raise NodeError("no wallet yet: create one with `zion wallet new`")
        if not is_address(chosen):
            raise NodeError(f"{chosen!r} is not an Ethereum address")
        path = self._dir / f"{to_checksum_address(chosen)}.json"
        if not path.exists():
            raise NodeError(f"no wallet {chosen} in {self._dir}")
        check_private(path)
        key = _decrypt(json.loads(path.read_text()), password, to_checksum_address(chosen))
        return _account().from_key(key)

    def _store(self, account: LocalAccount, password: str) -> str:
        if len(password) < MIN_PASSWORD_CHARS:
            raise NodeError(f"the password must have at least {MIN_PASSWORD_CHARS} characters")
        keystore = _account().encrypt(account.key, password, kdf="scrypt")
        return self._write(account.address, json.dumps(keystore).encode())

    def _write(self, address: str, data: bytes) -> str:
        from eth_utils.address import to_checksum_address  # deferred: see _account()

        address = to_checksum_address(address)
        self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self._dir / f"{address}.json"
        if path.exists():
            raise NodeError(f"wallet {address} is already here")
        write_secret(path, data)
        if self.default_address() is None:
            write_secret(self._dir / _DEFAULT, address.encode())
        return address


def _decrypt(keystore: dict[str, object], password: str, name: str) -> bytes:
    try:
        return bytes(_account().decrypt(keystore, password))
    except ValueError as exc:
        if "MAC mismatch" in str(exc):
            raise NodeError(f"wrong password for wallet {name}") from None
        raise NodeError(f"{name} is not a usable keystore: {exc}") from None


def _account() -> Any:
    """eth_account's Account, imported on first use rather than with this module: eth-account
    takes ~1 s to import (python -X importtime; most of it py_ecc's BLS tables, which
    eth-keyfile loads), and the daemon and every CLI command import this module."""
    from eth_account import Account

    return Account
