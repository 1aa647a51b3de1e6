"""Keystores on disk: private files, passwords checked, nothing overwritten."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from eth_account import Account

from zion.node.errors import NodeError
from zion.node.home import NodeHome
from zion.node.wallet import Wallets

PASSWORD = "correct horse battery"


def test_a_new_wallet_is_a_private_scrypt_keystore_and_the_default(tmp_path: Path) -> None:
    wallets = Wallets(NodeHome(tmp_path))
    address = wallets.create(PASSWORD)
    path = tmp_path / "wallets" / f"{address}.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    keystore = json.loads(path.read_text())
    assert keystore["crypto"]["kdf"] == "scrypt"
    assert PASSWORD not in path.read_text()
    assert wallets.default_address() == address
    assert wallets.unlock(PASSWORD).address == address
    second = wallets.create(PASSWORD)
    assert wallets.default_address() == address  # the first stays the default
    assert [w.address for w in wallets.list()] == sorted([address, second])


def test_a_wrong_password_is_a_clear_error(tmp_path: Path) -> None:
    wallets = Wallets(NodeHome(tmp_path))
    address = wallets.create(PASSWORD)
    with pytest.raises(NodeError, match="wrong password"):
        wallets.unlock("not the password", address)


def test_import_a_key_and_a_keystore(tmp_path: Path) -> None:
    account = Account.create()
    wallets = Wallets(NodeHome(tmp_path / "a"))
    assert wallets.import_key(account.key.hex(), PASSWORD) == account.address
    with pytest.raises(NodeError, match="already"):
        wallets.import_key(account.key.hex(), PASSWORD)
    exported = tmp_path / "keystore.json"
    exported.write_text(json.dumps(Account.encrypt(account.key, "their own password")))
    other = Wallets(NodeHome(tmp_path / "b"))
    with pytest.raises(NodeError, match="wrong password"):
        other.import_keystore(exported, PASSWORD)
    assert other.list() == []
    assert other.import_keystore(exported, "their own password") == account.address
    assert other.unlock("their own password").key == account.key


def test_bad_input(tmp_path: Path) -> None:
    wallets = Wallets(NodeHome(tmp_path))
    with pytest.raises(NodeError, match="no wallet"):
        wallets.unlock(PASSWORD)
    with pytest.raises(NodeError, match="at least"):
        wallets.create("short")
    with pytest.raises(NodeError, match="private key"):
        wallets.import_key("not hex", PASSWORD)
    address = wallets.create(PASSWORD)
    (tmp_path / "wallets" / f"{address}.json").chmod(0o644)
    with pytest.raises(NodeError, match="readable by others"):
        wallets.unlock(PASSWORD, address)
