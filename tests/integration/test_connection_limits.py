"""Connection limits: a member node takes at most [network] max_inbound connections from
others, says so in `zion status`, and keeps accepting as connections come and go (py-libp2p
0.8.1 alone stops accepting after max_connections - min_connections inbound connections
ever: here 4, and this test makes 9)."""

from __future__ import annotations

from tests.integration.nodes import NodeProcess, Spawn, wait_until


def inbound(node: NodeProcess) -> int:
    return int(node.status()["connections"]["inbound"])


def test_inbound_connections_are_capped_and_slots_come_back(spawn: Spawn) -> None:
    hub = spawn("hub", config="[network]\nmax_inbound = 2\nmax_connections = 4\n")
    status = hub.status()
    assert status["connection_limits"] == {
        "max_connections": 4,
        "max_inbound": 2,
        "max_connections_per_peer": 2,
    }
    first = spawn("first", bootstrap=[hub.address])
    second = spawn("second", bootstrap=[hub.address])
    wait_until(lambda: inbound(hub) == 2, 15, "two inbound connections")
    third = spawn("third", bootstrap=[hub.address])
    # The third is refused (closed as it arrives): the hub never holds more than two.
    wait_until(
        lambda: "bootstrap peer" in third.log_file.read_text(), 15, "the third's dial to end"
    )
    wait_until(lambda: not third.connected_to(hub.peer_id), 15, "the third to be refused")
    assert inbound(hub) == 2
    assert not hub.connected_to(third.peer_id)
    assert hub.connected_to(first.peer_id) and hub.connected_to(second.peer_id)

    # Slots come back when connections close: more clients than the limit over time.
    for node in (first, second, third):
        node.stop()
    wait_until(lambda: inbound(hub) == 0, 15, "the hub to see them go")
    for round_ in range(3):
        clients = [spawn(f"again{round_}-{i}", bootstrap=[hub.address]) for i in range(2)]
        wait_until(lambda: inbound(hub) == 2, 15, f"round {round_}: two inbound connections")
        for client in clients:
            client.stop()
        wait_until(lambda: inbound(hub) == 0, 15, f"round {round_}: the hub to see them go")
