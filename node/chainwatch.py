"""The chain watcher: follows the Governor's events into SQLite and the event log.

It reads only blocks with at least ``confirmations`` blocks on top, remembers the hash of the
last block it read, and if that block is no longer on the chain (a reorg deeper than the
confirmations) it rewinds REORG_REWIND_BLOCKS and reads again; the store's upserts make
reading a block twice harmless.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import trio

from zion.contracts import artifacts
from zion.contracts.errors import ChainError
from zion.storage.dao import ChainEvent, DaoStore

if TYPE_CHECKING:
    # A type only: the chain client (web3) takes ~1 s to import, and the daemon imports this
    # module whether or not a chain is configured.
    from zion.contracts.client import Dao

log = logging.getLogger(__name__)

POLL_INTERVAL_S: Final = 2.0
#: Blocks read per eth_getLogs call.
MAX_BLOCKS_PER_QUERY: Final = 2000
REORG_REWIND_BLOCKS: Final = 64
_EVENTS: Final = {
    "ProposalCreated": "created",
    "VoteCast": "vote",
    "ProposalQueued": "queued",
    "ProposalExecuted": "executed",
    "ProposalCanceled": "canceled",
}


class ChainWatcher:
    def __init__(
        self,
        dao: Dao,
        store: DaoStore,
        confirmations: int,
        clock: Callable[[], int],
        notify: Callable[[], None],
    ) -> None:
        self._dao = dao
        self._store = store
        self._confirmations = confirmations
        self._clock = clock
        self._notify = notify

    async def run(self) -> None:
        while True:
            try:
                if await trio.to_thread.run_sync(self.poll_once):
                    self._notify()
            except ChainError as exc:
                log.warning("chain watcher: %s", exc)
            except Exception as exc:
                log.warning("chain watcher cannot read the chain: %r", exc)
            await trio.sleep(POLL_INTERVAL_S)

    def poll_once(self) -> int:
        """Read the confirmed blocks not read yet; return how many events were stored."""
        w3 = self._dao.chain.w3
        governor = self._dao.deployment.governor
        safe = int(w3.eth.block_number) - self._confirmations
        cursor = self._store.cursor(governor)
        start = self._dao.deployment.block if cursor is None else cursor[0] + 1
        reorganised = (
            cursor is not None
            and bool(cursor[1])
            and (safe < cursor[0] or _hash(w3.eth.get_block(cursor[0])) != cursor[1])
        )
        if cursor is not None and reorganised:
            back = max(cursor[0] - REORG_REWIND_BLOCKS, self._dao.deployment.block)
            log.warning("chain reorganised below block %d: reading from %d again", cursor[0], back)
            self._store.rewind(governor, back)
            start = back + 1
        stored = 0
        while start <= safe:
            end = min(start + MAX_BLOCKS_PER_QUERY - 1, safe)
            events = self._events(start, end)
            self._store.apply(governor, events, end, _hash(w3.eth.get_block(end)), self._clock())
            stored += len(events)
            start = end + 1
        return stored

    def _events(self, start: int, end: int) -> list[ChainEvent]:
        """One eth_getLogs for the governor's address; each log decoded by its topic."""
        governor = self._dao.governor
        logs = self._dao.chain.w3.eth.get_logs(
            {"address": governor.address, "fromBlock": start, "toBlock": end}
        )
        found = []
        for entry in logs:
            known = _decoders().get(bytes(entry["topics"][0])) if entry["topics"] else None
            if known is not None:
                name, kind = known
                found.append(_event(kind, getattr(governor.events, name)().process_log(entry)))
        return found


@functools.cache
def _decoders() -> dict[bytes, tuple[str, str]]:
    """Log topic -> (event name, kind), from the Governor's ABI."""
    # Imported here, as for Dao above (eth-utils alone takes ~0.2 s); web3 has loaded it by now.
    from eth_utils.abi import event_abi_to_log_topic

    return {
        event_abi_to_log_topic(item): (item["name"], _EVENTS[item["name"]])  # type: ignore[arg-type]
        for item in artifacts.load(artifacts.GOVERNOR).abi
        if item.get("type") == "event" and item.get("name") in _EVENTS
    }


def _event(kind: str, entry: Any) -> ChainEvent:
    args = entry["args"]
    data: dict[str, Any] = {}
    if kind == "created":
        data = {
            "proposer": args["proposer"],
            "description": args["description"],
            "snapshot": int(args["voteStart"]),
            "deadline": int(args["voteEnd"]),
        }
    elif kind == "vote":
        data = {
            "voter": args["voter"],
            "support": int(args["support"]),
            "weight": int(args["weight"]),
        }
    return ChainEvent(
        kind, int(entry["blockNumber"]), int(entry["logIndex"]), int(args["proposalId"]), data
    )


def _hash(block: Any) -> str:
    return "0x" + bytes(block["hash"]).hex()
