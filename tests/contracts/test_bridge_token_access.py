"""A bridge open to DAO token holders asks the token contract itself: a member whose profile
links a wallet holding the token is served; one linking an empty wallet, or none, is not."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import trio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

from tests.contracts.chains import ETH, World
from zion.node import config
from zion.node.bridge_server import AccessPolicy, BridgeServer, TokenHolders
from zion.node.clock import now_ms
from zion.protocols import bridge, identity, records
from zion.storage.bridges import BridgeStore
from zion.storage.database import Database
from zion.storage.records import RecordStore


def member_linking(store: RecordStore, key_byte: int, wallet: LocalAccount | None) -> str:
    key = Ed25519PrivateKey.from_private_bytes(bytes([key_byte] * 32))
    peer = identity.peer_id_of(key)
    body = records.ProfileBody(name=f"member {key_byte}")
    if wallet is not None:
        link = encode_defunct(text=records.wallet_link_message(peer))
        signature = bytes(wallet.sign_message(link).signature)
        body = records.ProfileBody(
            name=f"member {key_byte}", wallet=wallet.address, wallet_sig=signature
        )
    profile = records.sign_record(
        key, kind="profile", subject=records.PROFILE_SUBJECT, seq=1, created=now_ms(), body=body
    )
    store.apply(profile, now_ms())
    return peer


async def test_token_holders_are_served_and_others_refused(world: World, tmp_path: Path) -> None:
    db = Database(tmp_path / "zion.db")
    store = RecordStore(db)
    holder = member_linking(store, 1, world.voters[2])  # holds 30 tokens
    empty = member_linking(store, 2, world.relayer)  # holds none
    unlinked = member_linking(store, 3, None)

    async def balance_of(wallet: str) -> int:
        return await trio.to_thread.run_sync(world.dao.balance, wallet)

    assert await balance_of(world.voters[2].address) == 30 * ETH
    served: list[str] = []

    async def handler(asker: str, request: bridge.Request) -> AsyncIterator[bridge.Reply]:
        served.append(asker)
        yield bridge.Done(model="test")

    settings = msgspec.structs.replace(
        config.load(None).bridge.ai, enabled=True, access="token", min_token_balance=str(ETH)
    )
    policy = AccessPolicy("token", token_holders=TokenHolders(store, balance_of, ETH))
    server = BridgeServer("ai", settings, policy, BridgeStore(db), handler)
    draft = bridge.encode_request(bridge.Draft(notes="a lamp"))
    answers = {
        peer: [r async for r in server.answer(peer, draft)] for peer in (holder, empty, unlinked)
    }
    assert answers[holder] == [bridge.Done(model="test")]
    for peer in (empty, unlinked):
        assert isinstance(answers[peer][0], bridge.Error)
        assert answers[peer][0].reason == bridge.FORBIDDEN
        assert "token" in answers[peer][0].message
    assert served == [holder]
    db.close()
