"""A ballot signed the way a browser wallet signs it (MetaMask's eth_signTypedData_v4, i.e.
@metamask/eth-sig-util signTypedData V4 in Node) over the typed data the node serves: the node
recovers the voter from it and the Governor counts it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from eth_account import Account

from tests.contracts.chains import World, transfer_proposal
from zion.contracts.client import FOR, ballot_signer, sign_ballot

INTEROP_DIR = Path(__file__).resolve().parents[1] / "interop"


@pytest.mark.interop
@pytest.mark.parametrize("w3", ["eth-tester"], indirect=True)
def test_a_metamask_signature_is_accepted_by_node_and_chain(node_binary: str, world: World) -> None:
    proposal = transfer_proposal(world, Account.create().address)
    voter = world.voters[0]
    typed = world.dao.ballot_typed_data(proposal.id, FOR, voter.address)
    request = {"privateKey": voter.key.hex(), "typedData": typed}
    signed = subprocess.run(
        [node_binary, "sign_typed_data.mjs"],
        cwd=INTEROP_DIR,
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    signature = bytes.fromhex(signed.stdout.strip().removeprefix("0x"))
    assert signature == sign_ballot(voter, typed)  # byte-identical to eth-account's
    assert ballot_signer(typed, signature) == voter.address
    world.dao.cast_vote_by_sig(world.relayer, proposal.id, FOR, voter.address, signature)
    assert world.dao.status(proposal.id).votes_for == 100 * 10**18
