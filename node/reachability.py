"""Whether others can dial this node: AutoNAT (libp2p's autonat v1) against peers that serve it.

Seeds answer dial-back requests (``[network] autonat_service``, node/network.py dials back on
a new connection). A member asks up to MAX_SERVERS_ASKED of them: the majority of those that
tried decides between public and private (behind NAT or a firewall, or announcing a wrong
address). The answer is shown by ``zion status`` and checked again every
CHECK_INTERVAL_S, sooner while unknown.
"""

from __future__ import annotations

import enum
import logging
from typing import Final, Protocol

import trio

log = logging.getLogger(__name__)

MAX_SERVERS_ASKED: Final = 3
CHECK_INTERVAL_S: Final = 900.0
#: While no server has answered: how soon to ask again, doubling up to CHECK_INTERVAL_S.
RETRY_INTERVAL_S: Final = 10.0


class DialBack(enum.Enum):
    """An AutoNAT server's answer: it reached us, it could not, or it would not say (it
    refused: too many requests, or none of our addresses is the IP it sees us at)."""

    REACHED = "reached"
    FAILED = "failed"
    UNANSWERED = "unanswered"


class Reachability(enum.Enum):
    UNKNOWN = "unknown"
    PUBLIC = "public"
    PRIVATE = "private"


class DialBackNetwork(Protocol):
    def autonat_servers(self) -> list[str]: ...
    async def ask_dial_back(self, peer_id: str) -> DialBack: ...


def verdict(answers: list[DialBack]) -> Reachability:
    """The majority of the servers that tried (a single liar cannot outvote two)."""
    reached, failed = answers.count(DialBack.REACHED), answers.count(DialBack.FAILED)
    if reached > failed:
        return Reachability.PUBLIC
    if failed > reached:
        return Reachability.PRIVATE
    return Reachability.UNKNOWN


class ReachabilityChecker:
    def __init__(self, network: DialBackNetwork) -> None:
        self._network = network
        self.reachability = Reachability.UNKNOWN

    async def run(self) -> None:
        retry = RETRY_INTERVAL_S
        while True:
            if await self.check() is Reachability.UNKNOWN:
                await trio.sleep(retry)
                retry = min(retry * 2, CHECK_INTERVAL_S)
            else:
                retry = RETRY_INTERVAL_S
                await trio.sleep(CHECK_INTERVAL_S)

    async def check(self) -> Reachability:
        """Ask the servers now; keep the last answer when none gives one."""
        servers = self._network.autonat_servers()[:MAX_SERVERS_ASKED]
        answers = [await self._network.ask_dial_back(server) for server in servers]
        found = verdict(answers)
        if found is not Reachability.UNKNOWN and found is not self.reachability:
            log.info("reachability: %s (asked %d peers)", found.value, len(answers))
            self.reachability = found
        return found
