"""Browser compatibility: the typed data the gateway serves, signed the way a browser wallet
signs it (MetaMask's eth_signTypedData_v4, i.e. @metamask/eth-sig-util signTypedData V4 in
Node), is accepted by the node and then by the Governor."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from eth_account import Account

from tests.contracts.chains import ETH, World, transfer_proposal
from tests.unit.gateway.harness import AUTH, serve
from zion.contracts.client import FOR, sign_ballot
from zion.node.relayer import Relayer
from zion.storage.database import Database
from zion.storage.records import RecordStore
from zion.storage.relays import RelayLedger

INTEROP_DIR = Path(__file__).resolve().parents[1] / "interop"


def metamask_sign(node_binary: str, private_key: bytes, typed: dict[str, object]) -> str:
    request = {"privateKey": "0x" + private_key.hex(), "typedData": typed}
    signed = subprocess.run(
        [node_binary, "sign_typed_data.mjs"],
        cwd=INTEROP_DIR,
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return signed.stdout.strip()


@pytest.mark.interop
@pytest.mark.parametrize("w3", ["eth-tester"], indirect=True)
async def test_a_metamask_signature_over_the_served_typed_data(
    node_binary: str, world: World, tmp_path: Path
) -> None:
    proposal = transfer_proposal(world, Account.create().address)
    voter = world.voters[0]
    async with serve(tmp_path, lambda: world.dao) as api:
        url = f"/api/v1/dao/proposals/{proposal.id}"
        typed = (
            await api.get(f"{url}/ballot", params={"voter": voter.address, "support": 1})
        ).json()
        signature = metamask_sign(node_binary, bytes(voter.key), typed)
        assert bytes.fromhex(signature.removeprefix("0x")) == sign_ballot(voter, typed)
        body = {"voter": voter.address, "support": FOR, "signature": signature}
        accepted = await api.post(f"{url}/ballots", json=body, headers=AUTH)
        assert accepted.status_code == 201, accepted.text
    # The ballot the node stored goes on-chain as it is.
    db = Database(tmp_path / "zion.db")
    relayer = Relayer(world.dao, world.relayer, RecordStore(db), RelayLedger(db))
    assert await relayer.relay_once() == 1
    assert world.dao.status(proposal.id).votes_for == 100 * ETH
