"""The relayer: submits members' gossiped ballots on-chain with castVoteBySig.

Only on nodes configured for it ([chain] relayer = true), which pay the gas from their own
wallet. Ballots go in nonce order per voter (a Governor nonce is one counter per voter across
all proposals, so a ballot can only be submitted when its nonce is the voter's next), each
once: the ledger (storage/relays.py) is written before a transaction is sent, and a ballot
found there after a restart is checked against the chain before anything is sent again.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import TYPE_CHECKING, Final

import trio

from zion.contracts.errors import ChainError, ContractRevert
from zion.protocols.records import BallotBody, Record
from zion.storage import relays
from zion.storage.records import RecordStore
from zion.storage.relays import RelayLedger

if TYPE_CHECKING:
    # Types only: web3 and eth-account take ~1.4 s to import, and the daemon imports this
    # module whether or not a chain is configured.
    from eth_account.signers.local import LocalAccount

    from zion.contracts.client import Dao

log = logging.getLogger(__name__)

#: How often the relayer looks for ballots to submit (also woken by new ones).
RELAY_INTERVAL_S: Final = 5.0


class Relayer:
    def __init__(
        self, dao: Dao, account: LocalAccount, store: RecordStore, ledger: RelayLedger
    ) -> None:
        self._dao = dao
        self._account = account
        self._store = store
        self._ledger = ledger
        self._wake = trio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                await self.relay_once()
            except ChainError as exc:
                log.warning("relaying ballots failed, will retry: %s", exc)
            with trio.move_on_after(RELAY_INTERVAL_S):
                await self._wake.wait()
            self._wake = trio.Event()

    async def relay_once(self) -> int:
        """Submit every ballot whose turn has come; return how many were sent."""
        sent = 0
        for voter, ballots in self._pending().items():
            chain_nonce = await trio.to_thread.run_sync(self._dao.nonce, voter)
            for record in sorted(ballots, key=lambda r: int(_body(r).nonce)):
                body = _body(record)
                nonce = int(body.nonce)
                if nonce < chain_nonce:
                    await self._settle_old(record, body)
                    continue
                if nonce > chain_nonce:
                    break  # an earlier ballot of this voter must be mined first
                if await self._send(record, body):
                    sent += 1
                    chain_nonce += 1
                else:
                    break
        return sent

    def _pending(self) -> dict[str, list[Record]]:
        governor = self._dao.deployment.governor.lower()
        chain_id = self._dao.deployment.chain_id
        by_voter: dict[str, list[Record]] = defaultdict(list)
        for record in self._store.of_kind("ballot"):
            body = record.body
            if not isinstance(body, BallotBody):
                continue
            if body.governor.lower() != governor or body.chain_id != chain_id:
                continue
            relay = self._ledger.get(record.id)
            if relay is None or relay.state == relays.SENDING:
                by_voter[body.voter].append(record)
        return by_voter

    async def _settle_old(self, record: Record, body: BallotBody) -> None:
        """A ballot whose nonce the chain has passed: counted (by us before a crash, or by
        someone else) or superseded. Either way it is never sent again."""
        counted = await trio.to_thread.run_sync(self._has_voted, body)
        state, detail = (relays.DONE, "counted") if counted else (relays.FAILED, "stale nonce")
        self._ledger.mark(record.id, state, detail=detail)

    async def _send(self, record: Record, body: BallotBody) -> bool:
        self._ledger.mark(
            record.id,
            relays.SENDING,
            governor=body.governor,
            proposal_id=body.proposal_id,
            voter=body.voter,
            nonce=body.nonce,
        )
        try:
            receipt = await trio.to_thread.run_sync(
                lambda: self._dao.cast_vote_by_sig(
                    self._account, int(body.proposal_id), body.support, body.voter, body.signature
                )
            )
        except ContractRevert as exc:
            self._ledger.mark(record.id, relays.FAILED, detail=exc.name)
            log.info("ballot %s refused on-chain: %s", record.id, exc)
            return False
        tx_hash = "0x" + bytes(receipt["transactionHash"]).hex()
        self._ledger.mark(record.id, relays.DONE, tx_hash=tx_hash)
        log.info("relayed ballot of %s on proposal %s in %s", body.voter, body.proposal_id, tx_hash)
        return True

    def _has_voted(self, body: BallotBody) -> bool:
        return bool(self._dao.governor.functions.hasVoted(int(body.proposal_id), body.voter).call())


def _body(record: Record) -> BallotBody:
    assert isinstance(record.body, BallotBody)
    return record.body
