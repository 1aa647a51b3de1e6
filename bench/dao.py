"""DAO costs: gas of every action of the governance flow, and ballots verified per second.

    .venv/bin/python bench/dao.py [--ballots 2000]

Gas is measured on the in-process eth-tester chain (same EVM rules as anvil and mainnet for
these contracts). Ballot verification is what every node does for every gossiped ballot:
recover the EIP-712 signer (eth-account) and compare it with the voter.
"""

from __future__ import annotations

import argparse
import time

from common import ed25519_verify_seconds
from eth_account import Account
from web3 import EthereumTesterProvider, Web3

from zion.contracts.client import FOR, Chain, Dao, GovernanceSettings, sign_ballot
from zion.protocols import records

ETH = 10**18


def gas_table() -> list[tuple[str, int]]:
    w3 = Web3(EthereumTesterProvider())
    chain = Chain(w3)
    people = [Account.create() for _ in range(5)]
    for person in people:
        w3.eth.send_transaction(
            {"from": w3.eth.accounts[0], "to": person.address, "value": 10 * ETH}
        )
    deployer, relayer, *voters = people
    start = w3.eth.block_number
    settings = GovernanceSettings(
        voting_delay_blocks=1, voting_period_blocks=10, timelock_delay_s=60
    )
    deployment = chain.deploy(deployer, [v.address for v in voters], [100 * ETH] * 3, settings)
    rows = []
    names = ["deploy token", "deploy timelock", "deploy governor", "grant proposer role",
             "grant canceller role", "renounce admin role"]  # fmt: skip
    for offset, name in enumerate(names, start=1):
        block = w3.eth.get_block(start + offset, full_transactions=True)
        receipt = w3.eth.get_transaction_receipt(block["transactions"][0]["hash"])
        rows.append((name, int(receipt["gasUsed"])))
    dao = Dao(chain, deployment)
    w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": deployment.timelock, "value": ETH})
    for voter in voters:
        receipt = dao.delegate(voter)
    rows.append(("delegate", int(receipt["gasUsed"])))
    tester = w3.provider.ethereum_tester  # type: ignore[attr-defined]
    tester.mine_blocks(1)
    recipient = Account.create().address
    proposal = dao.propose(voters[0], [recipient], [ETH // 2], [b""], "Pay for the logo")
    propose_block = w3.eth.get_block("latest", full_transactions=True)
    receipt = w3.eth.get_transaction_receipt(propose_block["transactions"][0]["hash"])
    rows.append(("propose (one transfer)", int(receipt["gasUsed"])))
    tester.mine_blocks(2)
    for index, voter in enumerate(voters):
        typed = dao.ballot_typed_data(proposal.id, FOR, voter.address)
        receipt = dao.cast_vote_by_sig(
            relayer, proposal.id, FOR, voter.address, sign_ballot(voter, typed)
        )
        rows.append((f"castVoteBySig (ballot {index + 1})", int(receipt["gasUsed"])))
    tester.mine_blocks(settings.voting_period_blocks)
    rows.append(("queue", int(dao.queue(relayer, proposal)["gasUsed"])))
    tester.time_travel(w3.eth.get_block("latest")["timestamp"] + 61)
    tester.mine_blocks(1)
    rows.append(
        ("execute (transfer from the treasury)", int(dao.execute(relayer, proposal)["gasUsed"]))
    )
    assert w3.eth.get_balance(recipient) == ETH // 2
    return rows


def ballots_per_second(count: int) -> float:
    voter = Account.create()
    bodies = []
    for n in range(count):
        unsigned = records.BallotBody(
            chain_id=31337, governor="0x" + "ab" * 20, proposal_id=str(n), support=1,
            voter=voter.address, nonce=str(n), signature=b"\0" * 65,
        )  # fmt: skip
        signature = sign_ballot(voter, records.ballot_typed_data(unsigned))
        bodies.append(
            records.BallotBody(
                **{
                    **{f: getattr(unsigned, f) for f in unsigned.__struct_fields__},
                    "signature": signature,
                }
            )
        )
    start = time.perf_counter()
    for body in bodies:
        assert records.ballot_signer(body) == voter.address
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ballots", type=int, default=2000)
    args = parser.parse_args()
    print("gas of each action (eth-tester):")
    total = 0
    for name, gas in gas_table():
        total += gas
        print(f"  {name:40s} {gas:>10,}")
    print(f"  {'total':40s} {total:>10,}")
    rate = ballots_per_second(args.ballots)
    ed25519 = ed25519_verify_seconds()["libsodium (used by the node)"]
    print(f"ballots verified (EIP-712 recover + compare): {rate:,.0f}/s, {1e6 / rate:,.0f} us each")
    print(f"  beside one Ed25519 record signature check (libsodium): {ed25519 * 1e6:.1f} us")


if __name__ == "__main__":
    main()
