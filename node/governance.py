"""Governance: the DAO as members see it through their node.

Members sign ballots with their own wallets (in the browser or with `zion dao vote`); the node
checks a ballot against the chain (the proposal is active, the nonce is the voter's next, the
voter has votes at the proposal's snapshot) and publishes it as a signed record, which gossip
and sync carry to every node. Until ballots are mined, a proposal's preview tally counts the
gossiped ballots, each weighted by its voter's votes at the snapshot. (Relaying ballots
on-chain and following the Governor's events come next: see the issue's notes.)

web3 is synchronous: every chain call runs in a worker thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from zion.contracts.errors import ChainError, ContractRevert
from zion.gateway.services import InvalidInput, NotFound, Unavailable
from zion.node.config import ChainConfig
from zion.node.publishing import Publisher
from zion.protocols import records
from zion.protocols.errors import ProtocolError
from zion.protocols.records import SUPPORT_NAMES, BallotBody, Record
from zion.storage.dao import DaoStore
from zion.storage.records import RecordStore

# The chain client (web3, eth-account, eth-utils) takes ~1.4 s to import (python -X importtime)
# and every node builds this service, most without a chain: it is imported only where the
# chain is used, each time after _chain() has connected (and so loaded it).
if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from zion.contracts.client import Dao


def connect_dao(chain: ChainConfig) -> Dao:
    """The configured DAO, reached over [chain] rpc_url (ChainError if nothing answers)."""
    from zion.contracts.client import Chain, Dao, Deployment  # deferred: see the imports

    client = Chain.connect(chain.rpc_url)
    deployment = Deployment(
        chain_id=client.chain_id,
        token=chain.token,
        timelock=chain.timelock,
        governor=chain.governor,
        block=0,
    )
    return Dao(client, deployment)


class GovernanceService:
    def __init__(
        self,
        connect: Callable[[], Dao] | None,
        publisher: Publisher,
        store: RecordStore,
        dao_store: DaoStore | None = None,
        *,
        relayer: bool = False,
        account: LocalAccount | None = None,
    ) -> None:
        """``connect`` makes the chain client (None: no chain configured); ``dao_store`` holds
        what the chain watcher has read."""
        self._connect = connect
        self._dao_store = dao_store
        self._dao: Dao | None = None
        self._publisher = publisher
        self._store = store
        self._relayer = relayer
        #: The node's own unlocked wallet (the relayer's): it sends propose/queue/execute.
        self._account = account

    async def _chain(self) -> Dao:
        if self._connect is None:
            raise Unavailable("no chain configured: set [chain] in config.toml (zion dao deploy)")
        if self._dao is None:
            try:
                self._dao = await trio.to_thread.run_sync(self._connect)
            except ChainError as exc:
                raise Unavailable(str(exc)) from None
        return self._dao

    async def info(self) -> dict[str, Any]:
        dao = await self._chain()
        deployment = dao.deployment
        return {
            "chain_id": deployment.chain_id,
            "token": deployment.token,
            "governor": deployment.governor,
            "timelock": deployment.timelock,
            "relayer": self._relayer,
            # The node's own unlocked wallet, which can vote, propose, queue and execute.
            "wallet": None if self._account is None else self._account.address,
        }

    async def proposals(self) -> list[dict[str, Any]]:
        """Every proposal the chain watcher has seen (confirmed blocks), newest first."""
        dao = await self._chain()
        if self._dao_store is None:
            return []
        return self._dao_store.proposals(dao.deployment.governor)

    async def proposal(self, proposal_id: int) -> dict[str, Any]:
        dao = await self._chain()
        status = await _call(dao.status, proposal_id)
        preview = await self._preview(dao, proposal_id, status.snapshot)
        return {
            "id": str(proposal_id),
            "state": status.state,
            "snapshot": status.snapshot,
            "deadline": status.deadline,
            "votes": {
                "against": str(status.votes_against),
                "for": str(status.votes_for),
                "abstain": str(status.votes_abstain),
            },
            "preview": preview,
        }

    async def propose(
        self, targets: list[str], values: list[int], calldatas: list[bytes], description: str
    ) -> dict[str, Any]:
        dao = await self._chain()
        from eth_utils.address import is_address  # deferred: see the imports

        account = self._wallet()
        if not targets or not len(targets) == len(values) == len(calldatas):
            raise InvalidInput("a proposal needs actions: as many targets as values and calldatas")
        if not all(is_address(t) for t in targets):
            raise InvalidInput("every target must be an Ethereum address")
        if not description.strip():
            raise InvalidInput("a proposal needs a description")
        proposal = await _call(
            lambda: dao.propose(account, targets, values, calldatas, description)
        )
        return {"id": str(proposal.id), "description": description}

    async def act(self, proposal_id: int, action: str) -> dict[str, Any]:
        """Queue or execute a proposal, from the node's wallet."""
        dao = await self._chain()
        account = self._wallet()
        proposal = await _call(dao.find_proposal, proposal_id)
        await _call(lambda: getattr(dao, action)(account, proposal))
        return await self.proposal(proposal_id)

    def _wallet(self) -> LocalAccount:
        if self._account is None:
            raise Unavailable(
                "this node has no unlocked wallet to send transactions: set [chain] relayer"
                " (with its wallet and password), or use `zion dao propose|queue|execute`"
            )
        return self._account

    async def ballot_typed_data(self, proposal_id: int, voter: str, support: int) -> dict[str, Any]:
        dao = await self._chain()
        from eth_utils.address import is_address  # deferred: see the imports

        if not is_address(voter):
            raise InvalidInput("voter must be an Ethereum address (0x and 40 hex digits)")
        if not 0 <= support < len(SUPPORT_NAMES):
            raise InvalidInput("support must be 0 (against), 1 (for) or 2 (abstain)")
        typed: dict[str, Any] = await _call(dao.ballot_typed_data, proposal_id, support, voter)
        return typed

    async def vote(self, proposal_id: int, support: int) -> Record:
        """Sign a ballot with the node's own wallet and publish it like a browser's."""
        account = self._wallet()
        typed = await self.ballot_typed_data(proposal_id, account.address, support)
        from zion.contracts.client import sign_ballot  # deferred: see the imports

        return await self.submit_ballot(
            proposal_id, account.address, support, sign_ballot(account, typed)
        )

    async def submit_ballot(
        self, proposal_id: int, voter: str, support: int, signature: bytes
    ) -> Record:
        """Check a wallet's ballot against the chain and publish it to the network."""
        typed = await self.ballot_typed_data(proposal_id, voter, support)
        from eth_utils.address import to_checksum_address  # deferred: see the imports

        from zion.contracts.client import ballot_signer

        dao = await self._chain()
        status = await _call(dao.status, proposal_id)
        if status.state != "Active":
            raise InvalidInput(f"proposal {proposal_id} is {status.state}, not open for votes")
        try:
            signer = ballot_signer(typed, signature)
        except ChainError as exc:
            raise InvalidInput(str(exc)) from None
        if signer.lower() != voter.lower():
            raise InvalidInput(f"the signature is by {signer}, not by the voter {voter}")
        weight = await _call(dao.votes_at, voter, status.snapshot)
        if weight == 0:
            raise InvalidInput(f"{voter} had no votes at the proposal's snapshot (delegate first)")
        body = BallotBody(
            chain_id=int(typed["domain"]["chainId"]),
            governor=typed["domain"]["verifyingContract"],
            proposal_id=str(proposal_id),
            support=support,
            voter=to_checksum_address(voter),
            nonce=typed["message"]["nonce"],
            signature=signature,
        )
        subject = records.ballot_subject(body)
        current = self._store.head(self._publisher.author, subject)
        seq = 1 if current is None else current.seq + 1
        try:
            return await self._publisher.publish(kind="ballot", subject=subject, seq=seq, body=body)
        except ProtocolError as exc:
            raise InvalidInput(exc.detail) from None

    async def _preview(self, dao: Dao, proposal_id: int, snapshot: int) -> dict[str, str]:
        """Tally of the gossiped ballots for this proposal: the latest per voter, weighted."""
        latest: dict[str, BallotBody] = {}
        governor = dao.deployment.governor.lower()
        for record in self._store.of_kind("ballot"):
            body = record.body
            if (
                isinstance(body, BallotBody)
                and body.governor.lower() == governor
                and body.proposal_id == str(proposal_id)
            ):
                known = latest.get(body.voter.lower())
                if known is None or int(body.nonce) > int(known.nonce):
                    latest[body.voter.lower()] = body
        tally = [0, 0, 0]
        for body in latest.values():
            tally[body.support] += await _call(dao.votes_at, body.voter, snapshot)
        return {name: str(votes) for name, votes in zip(SUPPORT_NAMES, tally, strict=True)}


async def _call(function: Callable[..., Any], *args: Any) -> Any:
    """A chain read in a worker thread; contract errors become problem documents."""
    try:
        return await trio.to_thread.run_sync(function, *args)
    except ContractRevert as exc:
        if exc.name == "GovernorNonexistentProposal":
            raise NotFound(f"no proposal {args[0] if args else ''} on this DAO") from None
        raise InvalidInput(str(exc)) from None
    except ChainError as exc:
        raise Unavailable(str(exc)) from None
