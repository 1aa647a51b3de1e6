"""The whole DAO flow on the in-process eth-tester chain and on anvil (a separate process on
127.0.0.1), with ballots signed off-chain and relayed with castVoteBySig, and the contract
errors named as the contracts name them, on both."""

from __future__ import annotations

import threading

import pytest
from eth_account import Account

from tests.contracts.chains import ETH, SETTINGS, World, transfer_proposal
from zion.contracts.client import (
    AGAINST,
    FOR,
    Chain,
    ContractRevert,
    Dao,
    ballot_signer,
    sign_ballot,
)
from zion.protocols import records

SENDERS = 6


def test_roles_are_wired_and_the_deployer_keeps_none(world: World) -> None:
    timelock = world.dao.timelock.functions
    governor = world.dao.deployment.governor
    assert timelock.hasRole(timelock.PROPOSER_ROLE().call(), governor).call()
    assert timelock.hasRole(timelock.CANCELLER_ROLE().call(), governor).call()
    anyone = "0x0000000000000000000000000000000000000000"
    assert timelock.hasRole(timelock.EXECUTOR_ROLE().call(), anyone).call()
    admin = timelock.DEFAULT_ADMIN_ROLE().call()
    assert not timelock.hasRole(admin, world.deployer.address).call()
    assert world.dao.token.functions.totalSupply().call() == 180 * ETH


def test_signed_ballots_relayed_then_queue_and_execute(world: World) -> None:
    recipient = Account.create().address
    proposal = transfer_proposal(world, recipient)
    for voter, support in zip(world.voters, (FOR, AGAINST, FOR), strict=True):
        typed = world.dao.ballot_typed_data(proposal.id, support, voter.address)
        signature = sign_ballot(voter, typed)
        assert ballot_signer(typed, signature) == voter.address
        world.dao.cast_vote_by_sig(world.relayer, proposal.id, support, voter.address, signature)
    status = world.dao.status(proposal.id)
    assert (status.votes_for, status.votes_against, status.votes_abstain) == (
        130 * ETH,
        50 * ETH,
        0,
    )
    world.mine(SETTINGS.voting_period_blocks)
    assert world.dao.status(proposal.id).state == "Succeeded"
    world.dao.queue(world.relayer, proposal)
    assert world.dao.status(proposal.id).state == "Queued"
    with pytest.raises(ContractRevert) as early:
        world.dao.execute(world.relayer, proposal)
    assert early.value.name == "TimelockUnexpectedOperationState"
    world.advance_time(SETTINGS.timelock_delay_s + 1)
    world.mine(1)
    world.dao.execute(world.relayer, proposal)
    assert world.dao.status(proposal.id).state == "Executed"
    assert world.w3.eth.get_balance(recipient) == 1 * ETH


def test_a_ballot_for_another_chain_is_refused_by_name(world: World) -> None:
    proposal = transfer_proposal(world, Account.create().address)
    voter = world.voters[0]
    typed = world.dao.ballot_typed_data(proposal.id, FOR, voter.address)
    typed["domain"]["chainId"] = "1"
    signature = sign_ballot(voter, typed)
    nonce_before = world.dao.nonce(voter.address)
    with pytest.raises(ContractRevert) as refused:
        world.dao.cast_vote_by_sig(world.relayer, proposal.id, FOR, voter.address, signature)
    assert refused.value.name == "GovernorInvalidSignature"
    assert world.dao.nonce(voter.address) == nonce_before  # nothing happened on-chain
    assert world.dao.status(proposal.id).votes_for == 0


def test_a_replayed_ballot_is_refused(world: World) -> None:
    proposal = transfer_proposal(world, Account.create().address)
    voter = world.voters[1]
    typed = world.dao.ballot_typed_data(proposal.id, AGAINST, voter.address)
    signature = sign_ballot(voter, typed)
    world.dao.cast_vote_by_sig(world.relayer, proposal.id, AGAINST, voter.address, signature)
    with pytest.raises(ContractRevert) as replay:
        world.dao.cast_vote_by_sig(world.relayer, proposal.id, AGAINST, voter.address, signature)
    assert replay.value.name == "GovernorInvalidSignature"  # the nonce moved on


def test_a_malformed_signature_and_a_missing_proposal(world: World) -> None:
    proposal = transfer_proposal(world, Account.create().address)
    voter = world.voters[2]
    with pytest.raises(ContractRevert) as malformed:
        world.dao.cast_vote_by_sig(world.relayer, proposal.id, FOR, voter.address, b"\x01" * 10)
    assert malformed.value.name == "GovernorInvalidSignature"
    with pytest.raises(ContractRevert) as missing:
        world.dao.status(12345)
    assert missing.value.name == "GovernorNonexistentProposal"
    assert missing.value.args_ == (12345,)


def test_ballot_records_use_the_governors_own_domain(world: World) -> None:
    """Nodes check ballot records without the chain; the domain they assume must be the one
    the deployed Governor reports."""
    voter = world.voters[0]
    typed = world.dao.ballot_typed_data(7, FOR, voter.address)
    body = records.BallotBody(
        chain_id=int(typed["domain"]["chainId"]),
        governor=typed["domain"]["verifyingContract"],
        proposal_id="7",
        support=FOR,
        voter=voter.address,
        nonce=typed["message"]["nonce"],
        signature=sign_ballot(voter, typed),
    )
    assert records.ballot_typed_data(body) == typed
    assert records.ballot_signer(body) == voter.address


def test_delegation_by_signature_costs_the_member_no_gas(world: World) -> None:
    member = Account.create()  # holds tokens, no ETH at all
    world.chain.transact(
        world.voters[0], world.dao.token.functions.transfer(member.address, 10 * ETH)
    )
    expiry = world.w3.eth.get_block("latest")["timestamp"] + 3600
    typed = world.dao.delegation_typed_data(member.address, member.address, expiry)
    signature = sign_ballot(member, typed)  # any EIP-712 message signs the same way
    world.dao.delegate_by_sig(world.relayer, typed, signature)
    assert world.dao.token.functions.getVotes(member.address).call() == 10 * ETH
    with pytest.raises(ContractRevert) as replay:
        world.dao.delegate_by_sig(world.relayer, typed, signature)
    assert replay.value.name == "InvalidAccountNonce"


def test_one_account_sends_from_many_threads_and_chains_at_once(world: World) -> None:
    """The relayer and a proposal from the UI send from the node's one wallet at the same
    time, through Chain objects of their own: each transaction needs its own nonce."""
    voter = world.voters[0]
    daos = [Dao(Chain(world.w3), world.dao.deployment) for _ in range(2)]
    start = threading.Barrier(SENDERS)
    errors: list[Exception] = []

    def send(number: int) -> None:
        start.wait()
        try:
            daos[number % 2].delegate(voter)
        except Exception as exc:  # collected: the assertion below names them
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a send hung"
    assert errors == []
