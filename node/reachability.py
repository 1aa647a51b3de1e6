"""Whether others can dial this node: AutoNAT (libp2p's autonat v1) against peers that serve it.

Seeds answer dial-back requests (``[network] autonat_service``, node/network.py dials back on
a new connection). A member asks up to MAX_SERVERS_ASKED of them: reached by any means
public; failed by all that answered means private (behind NAT or a firewall, or announcing a
wrong address). The answer is shown by ``zion status`` and checked again every
CHECK_INTERVAL_S, sooner while unknown.
"""

from __future__ import annotations

import enum
import logging
from typing import Final, Protocol

import trio

from zion.node.network import DialBack

log = logging.getLogger(__name__)

MAX_SERVERS_ASKED: Final = 3
CHECK_INTERVAL_S: Final = 900.0
#: While no server has answered: how often to look for one.
RETRY_INTERVAL_S: Final = 10.0


class Reachability(enum.Enum):
    UNKNOWN = "unknown"
    PUBLIC = "public"
    PRIVATE = "private"


class DialBackNetwork(Protocol):
    def autonat_servers(self) -> list[str]: ...
    async def ask_dial_back(self, peer_id: str) -> DialBack: ...


def verdict(answers: list[DialBack]) -> Reachability:
    if DialBack.REACHED in answers:
        return Reachability.PUBLIC
    if DialBack.FAILED in answers:
        return Reachability.PRIVATE
    return Reachability.UNKNOWN


class ReachabilityChecker:
    def __init__(self, network: DialBackNetwork) -> None:
        self._network = network
        self.reachability = Reachability.UNKNOWN

    async def run(self) -> None:
        while True:
            found = await self.check()
            await trio.sleep(
                CHECK_INTERVAL_S if found is not Reachability.UNKNOWN else RETRY_INTERVAL_S
            )

    async def check(self) -> Reachability:
        """Ask the servers now; keep the last answer when none gives one."""
        servers = self._network.autonat_servers()[:MAX_SERVERS_ASKED]
        answers = [await self._network.ask_dial_back(server) for server in servers]
        found = verdict(answers)
        if found is not Reachability.UNKNOWN and found is not self.reachability:
            log.info("reachability: %s (asked %d peers)", found.value, len(answers))
            self.reachability = found
        return found
