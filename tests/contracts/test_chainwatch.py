"""The chain watcher on eth-tester: confirmed Governor events into SQLite and the event log,
nothing from unconfirmed blocks, and a reorg undone by reading again."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account import Account

from tests.contracts.chains import ETH, World, transfer_proposal
from zion.contracts.client import AGAINST, FOR, sign_ballot
from zion.node.chainwatch import ChainWatcher
from zion.storage.dao import DaoStore
from zion.storage.database import Database
from zion.storage.records import RecordStore

pytestmark = pytest.mark.parametrize("w3", ["eth-tester"], indirect=True)


def vote(world: World, proposal_id: int, index: int, support: int) -> None:
    voter = world.voters[index]
    typed = world.dao.ballot_typed_data(proposal_id, support, voter.address)
    world.dao.cast_vote_by_sig(
        world.relayer, proposal_id, support, voter.address, sign_ballot(voter, typed)
    )


def watcher(world: World, db: Database) -> tuple[ChainWatcher, DaoStore]:
    store = DaoStore(db)
    return ChainWatcher(world.dao, store, 2, lambda: 0, lambda: None), store


def test_confirmed_events_are_stored_and_logged(world: World, tmp_path: Path) -> None:
    db = Database(tmp_path / "zion.db")
    watch, store = watcher(world, db)
    proposal = transfer_proposal(world, Account.create().address)
    vote(world, proposal.id, 0, FOR)
    vote(world, proposal.id, 1, AGAINST)
    watch.poll_once()
    # The last two blocks hold the votes: not confirmed yet.
    (seen,) = store.proposals(world.dao.deployment.governor)
    assert seen["id"] == str(proposal.id) and seen["votes"]["for"] == "0"
    world.mine(2)
    assert watch.poll_once() == 2
    (seen,) = store.proposals(world.dao.deployment.governor)
    assert seen["votes"] == {"against": str(50 * ETH), "for": str(100 * ETH), "abstain": "0"}
    assert seen["description"] == "Pay the designer 1 ETH"
    types = [event.type for event in RecordStore(db).events_after(0, 100)]
    assert types == ["dao.created", "dao.vote", "dao.vote"]
    assert watch.poll_once() == 0  # nothing read twice


def test_a_reorg_is_read_again(world: World, tmp_path: Path) -> None:
    tester = world.w3.provider.ethereum_tester  # type: ignore[attr-defined]
    db = Database(tmp_path / "zion.db")
    watch, store = watcher(world, db)
    proposal = transfer_proposal(world, Account.create().address)
    before_vote = tester.take_snapshot()
    vote(world, proposal.id, 2, FOR)
    world.mine(3)
    watch.poll_once()
    (seen,) = store.proposals(world.dao.deployment.governor)
    assert seen["votes"]["for"] == str(30 * ETH)
    # Another history: the same voter voted against, and the chain grew past our cursor.
    tester.revert_to_snapshot(before_vote)
    vote(world, proposal.id, 2, AGAINST)
    world.mine(5)
    watch.poll_once()
    (seen,) = store.proposals(world.dao.deployment.governor)
    assert seen["votes"] == {"against": str(30 * ETH), "for": "0", "abstain": "0"}
