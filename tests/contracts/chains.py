"""Chains for the contract tests: the in-process eth-tester chain, or anvil as a process, and a
deployed DAO with three voting members, a relayer and a funded treasury on it."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import EthereumTesterProvider, Web3

from zion.contracts.client import Chain, Dao, GovernanceSettings, Proposal

ETH = 10**18
SETTINGS = GovernanceSettings(
    voting_delay_blocks=1, voting_period_blocks=10, quorum_percent=4, timelock_delay_s=60
)


@dataclass
class World:
    w3: Web3
    chain: Chain
    dao: Dao
    deployer: LocalAccount
    voters: list[LocalAccount]
    relayer: LocalAccount

    def mine(self, blocks: int) -> None:
        if isinstance(self.w3.provider, EthereumTesterProvider):
            self.w3.provider.ethereum_tester.mine_blocks(blocks)
        else:
            self.w3.provider.make_request("anvil_mine", [hex(blocks)])  # type: ignore[arg-type]

    def advance_time(self, seconds: int) -> None:
        if isinstance(self.w3.provider, EthereumTesterProvider):
            now = self.w3.eth.get_block("latest")["timestamp"]
            self.w3.provider.ethereum_tester.time_travel(now + seconds)
        else:
            self.w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def eth_tester_world() -> World:
    """One deployed DAO on the in-process chain per test process: deploying it in py-evm
    takes seconds (15-30 s on a busy CI machine), and every test gets it back as it was
    (a snapshot taken before the test, restored after it)."""
    world = deployed_world(Web3(EthereumTesterProvider()))
    serialize_chain_access(world)
    return world


def serialize_chain_access(world: World) -> None:
    """eth-tester is not thread-safe, and nodes (and the tests of sending from threads) reach
    it from worker threads: one call at a time."""
    lock = threading.RLock()
    provider: Any = world.w3.provider
    tester = provider.ethereum_tester

    def locked(function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def call(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return function(*args, **kwargs)

        return call

    provider.make_request = locked(provider.make_request)
    for name in ("mine_blocks", "time_travel", "take_snapshot", "revert_to_snapshot"):
        setattr(tester, name, locked(getattr(tester, name)))


@pytest.fixture(params=["eth-tester", pytest.param("anvil", marks=pytest.mark.slow)])
def w3(request: pytest.FixtureRequest) -> Iterator[Web3]:
    if request.param == "eth-tester":
        shared: World = request.getfixturevalue("eth_tester_world")
        tester = shared.w3.provider.ethereum_tester  # type: ignore[attr-defined]
        snapshot = tester.take_snapshot()
        yield shared.w3
        tester.revert_to_snapshot(snapshot)
        return
    yield Web3(Web3.HTTPProvider(request.getfixturevalue("anvil_url")))


@pytest.fixture
def world(w3: Web3, request: pytest.FixtureRequest) -> World:
    if isinstance(w3.provider, EthereumTesterProvider):
        shared: World = request.getfixturevalue("eth_tester_world")
        return shared
    return deployed_world(w3)  # anvil: a new chain per test, and deploying on it is quick


def deployed_world(w3: Web3) -> World:
    chain = Chain(w3)
    people = [Account.create() for _ in range(5)]
    funder = w3.eth.accounts[0]
    for person in people:
        w3.eth.send_transaction({"from": funder, "to": person.address, "value": 10 * ETH})
    deployer, relayer, *voters = people
    deployment = chain.deploy(
        deployer, [v.address for v in voters], [100 * ETH, 50 * ETH, 30 * ETH], SETTINGS
    )
    dao = Dao(chain, deployment)
    w3.eth.send_transaction({"from": funder, "to": deployment.timelock, "value": 5 * ETH})
    for voter in voters:
        dao.delegate(voter)
    world = World(w3, chain, dao, deployer, voters, relayer)
    world.mine(1)
    return world


def transfer_proposal(world: World, recipient: str) -> Proposal:
    proposal = world.dao.propose(
        world.voters[0], [recipient], [1 * ETH], [b""], "Pay the designer 1 ETH"
    )
    world.mine(SETTINGS.voting_delay_blocks + 1)
    assert world.dao.status(proposal.id).state == "Active"
    return proposal
