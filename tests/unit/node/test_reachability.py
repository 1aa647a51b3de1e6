"""AutoNAT answers to a verdict, and the checker keeping its last known answer."""

from __future__ import annotations

from zion.node.reachability import (
    MAX_SERVERS_ASKED,
    DialBack,
    Reachability,
    ReachabilityChecker,
    verdict,
)


def test_the_majority_of_servers_that_tried_decides() -> None:
    assert verdict([DialBack.REACHED]) is Reachability.PUBLIC
    assert verdict([DialBack.FAILED, DialBack.REACHED]) is Reachability.UNKNOWN
    assert verdict([DialBack.FAILED, DialBack.REACHED, DialBack.FAILED]) is Reachability.PRIVATE
    assert verdict([DialBack.FAILED, DialBack.UNANSWERED]) is Reachability.PRIVATE
    assert verdict([DialBack.UNANSWERED]) is Reachability.UNKNOWN
    assert verdict([]) is Reachability.UNKNOWN


class Servers:
    def __init__(self, answers: dict[str, DialBack]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def autonat_servers(self) -> list[str]:
        return list(self.answers)

    async def ask_dial_back(self, peer_id: str) -> DialBack:
        self.asked.append(peer_id)
        return self.answers[peer_id]


async def test_the_checker_asks_a_few_servers_and_keeps_its_last_answer() -> None:
    servers = Servers({f"s{i}": DialBack.FAILED for i in range(10)})
    checker = ReachabilityChecker(servers)
    assert await checker.check() is Reachability.PRIVATE
    assert len(servers.asked) == MAX_SERVERS_ASKED
    servers.answers = {"s0": DialBack.UNANSWERED}
    assert await checker.check() is Reachability.UNKNOWN
    assert checker.reachability is Reachability.PRIVATE  # nothing new learnt
    servers.answers = {"s0": DialBack.REACHED}
    await checker.check()
    assert checker.reachability is Reachability.PUBLIC
