"""The node's direct-message keyring in its home."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from zion.node.dmkeys import KEYS_FILE, MAX_DM_KEYS, DmKeyring
from zion.node.errors import NodeError
from zion.node.home import NodeHome
from zion.protocols import dm, identity


def test_a_key_is_made_once_private_and_kept(tmp_path: Path) -> None:
    home = NodeHome(tmp_path / "home")
    home.init()
    first = DmKeyring(home)
    assert stat.S_IMODE((home.path / KEYS_FILE).stat().st_mode) == 0o600
    assert DmKeyring(home).current_public == first.current_public


def test_rotation_keeps_old_mail_readable_up_to_a_bound(tmp_path: Path) -> None:
    home = NodeHome(tmp_path / "home")
    home.init()
    ring = DmKeyring(home)
    before = ring.current_public
    me = identity.peer_id_of(Ed25519PrivateKey.generate())
    envelope, _ = dm.seal(
        Ed25519PrivateKey.generate(),
        me,
        ring.current.public_key(),
        text="sent before the rotation",
        sent=1,
    )
    ring.rotate()
    reopened = DmKeyring(home)
    assert reopened.current_public != before
    assert dm.open_envelope(envelope, me, reopened.keys).text == "sent before the rotation"
    for _ in range(MAX_DM_KEYS):
        reopened.rotate()
    assert len(DmKeyring(home).keys) == MAX_DM_KEYS
    with pytest.raises(dm.ProtocolError):
        dm.open_envelope(envelope, me, DmKeyring(home).keys)


def test_a_damaged_or_exposed_keyring_is_refused(tmp_path: Path) -> None:
    home = NodeHome(tmp_path / "home")
    home.init()
    DmKeyring(home)
    path = home.path / KEYS_FILE
    path.chmod(0o644)
    with pytest.raises(NodeError, match="readable by others"):
        DmKeyring(home)
    path.chmod(0o600)
    path.write_bytes(b"short")
    with pytest.raises(NodeError, match="X25519"):
        DmKeyring(home)
