"""The relayer on eth-tester: gossiped ballots submitted in nonce order, once each, also
across a crash between sending and recording."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eth_account import Account

from tests.conftest import NOW
from tests.contracts.chains import ETH, World, transfer_proposal
from zion.contracts.client import AGAINST, FOR, sign_ballot
from zion.node.relayer import Relayer
from zion.protocols import records
from zion.storage import relays
from zion.storage.database import Database
from zion.storage.records import RecordStore
from zion.storage.relays import RelayLedger

pytestmark = pytest.mark.parametrize("w3", ["eth-tester"], indirect=True)
NODE_KEY = Ed25519PrivateKey.generate()


def ballot_record(world: World, proposal_id: int, voter_index: int, support: int) -> records.Record:
    voter = world.voters[voter_index]
    typed = world.dao.ballot_typed_data(proposal_id, support, voter.address)
    return ballot_from(typed, sign_ballot(voter, typed))


def ballot_from(typed: dict[str, object], signature: bytes) -> records.Record:
    domain, message = typed["domain"], typed["message"]
    assert isinstance(domain, dict) and isinstance(message, dict)
    body = records.BallotBody(
        chain_id=int(domain["chainId"]),
        governor=domain["verifyingContract"],
        proposal_id=message["proposalId"],
        support=message["support"],
        voter=message["voter"],
        nonce=message["nonce"],
        signature=signature,
    )
    return records.sign_record(
        NODE_KEY, kind="ballot", subject=records.ballot_subject(body), seq=1, created=NOW, body=body
    )


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return Database(tmp_path / "zion.db")


@pytest.fixture
def store(db: Database) -> RecordStore:
    return RecordStore(db)


def relayer_for(world: World, store: RecordStore, db: Database) -> Relayer:
    return Relayer(world.dao, world.relayer, store, RelayLedger(db))


async def test_ballots_are_relayed_once(world: World, store: RecordStore, db: Database) -> None:
    proposal = transfer_proposal(world, Account.create().address)
    for index, support in enumerate((FOR, AGAINST, FOR)):
        store.apply(ballot_record(world, proposal.id, index, support), NOW)
    relayer = relayer_for(world, store, db)
    assert await relayer.relay_once() == 3
    status = world.dao.status(proposal.id)
    assert (status.votes_for, status.votes_against) == (130 * ETH, 50 * ETH)
    assert await relayer.relay_once() == 0  # nothing twice
    assert RelayLedger(db).counts() == {relays.DONE: 3}


async def test_a_voters_ballots_go_in_nonce_order(
    world: World, store: RecordStore, db: Database
) -> None:
    first = transfer_proposal(world, Account.create().address)
    second = world.dao.propose(world.voters[0], [world.voters[0].address], [1], [b""], "Second")
    world.mine(2)
    voter = world.voters[2]
    typed_first = world.dao.ballot_typed_data(first.id, FOR, voter.address)
    typed_second = dict(typed_first)
    typed_second["message"] = dict(typed_first["message"], proposalId=str(second.id), nonce="1")
    later = ballot_from(typed_second, sign_ballot(voter, typed_second))
    store.apply(later, NOW)  # the nonce-1 ballot arrives first: it must wait
    relayer = relayer_for(world, store, db)
    assert await relayer.relay_once() == 0
    store.apply(ballot_from(typed_first, sign_ballot(voter, typed_first)), NOW)
    assert await relayer.relay_once() == 2
    assert world.dao.status(first.id).votes_for == 30 * ETH
    assert world.dao.status(second.id).votes_for == 30 * ETH


async def test_a_crash_between_sending_and_recording_sends_nothing_twice(
    world: World, store: RecordStore, db: Database
) -> None:
    proposal = transfer_proposal(world, Account.create().address)
    record = ballot_record(world, proposal.id, 1, AGAINST)
    store.apply(record, NOW)
    body = record.body
    assert isinstance(body, records.BallotBody)
    ledger = RelayLedger(db)
    # The previous run wrote "sending", sent the transaction, and died before "done".
    ledger.mark(record.id, relays.SENDING, voter=body.voter, nonce=body.nonce)
    world.dao.cast_vote_by_sig(world.relayer, proposal.id, AGAINST, body.voter, body.signature)
    block_before = world.w3.eth.block_number
    assert await relayer_for(world, store, db).relay_once() == 0
    assert world.w3.eth.block_number == block_before  # no transaction at all
    assert ledger.get(record.id) == relays.Relay(record.id, relays.DONE, None, "counted")
    assert world.dao.status(proposal.id).votes_against == 50 * ETH


async def test_a_ballot_with_a_stale_nonce_is_never_sent(
    world: World, store: RecordStore, db: Database
) -> None:
    """A ballot signed at nonce 0 for one proposal, while the voter spent nonce 0 on another:
    it can never be valid; it is dropped with the reason and costs no transaction."""
    first = transfer_proposal(world, Account.create().address)
    second = world.dao.propose(world.voters[0], [world.voters[0].address], [1], [b""], "Another")
    world.mine(2)
    voter = world.voters[1]
    stale = ballot_record(world, second.id, 1, FOR)  # signed at nonce 0
    used = world.dao.ballot_typed_data(first.id, AGAINST, voter.address)  # also nonce 0
    signature = sign_ballot(voter, used)
    world.dao.cast_vote_by_sig(world.relayer, first.id, AGAINST, voter.address, signature)
    store.apply(stale, NOW)
    block_before = world.w3.eth.block_number
    assert await relayer_for(world, store, db).relay_once() == 0
    assert world.w3.eth.block_number == block_before
    assert RelayLedger(db).get(stale.id) == relays.Relay(
        stale.id, relays.FAILED, None, "stale nonce"
    )
    assert world.dao.status(second.id).votes_for == 0
