"""Finding Zion peers: members that know only a seed find each other through the DHT
rendezvous (protocols/discovery.py), and a lost bootstrap peer is dialed again."""

from __future__ import annotations

from tests.integration.nodes import Spawn, wait_until

#: A member advertises in its first round and looks up every 10 s at first (node/discovery.py).
DISCOVERY_TIMEOUT_S = 45.0


def test_members_that_know_only_a_seed_find_each_other_through_the_dht(spawn: Spawn) -> None:
    seed = spawn("seed", extra=["--profile", "seed", "--metrics", "127.0.0.1:0"])
    alice = spawn("alice", bootstrap=[seed.address])
    bob = spawn("bob", bootstrap=[seed.address])
    alice_id, bob_id = alice.peer_id, bob.peer_id

    wait_until(
        lambda: bob.connected_to(alice_id) and alice.connected_to(bob_id),
        DISCOVERY_TIMEOUT_S,
        "alice and bob to find each other",
    )
    # Bob's lookup of the rendezvous key names alice (py-libp2p's DHT may have connected
    # them already while filling its routing table).
    wait_until(
        lambda: bob.status()["discovery"]["last_lookup_providers"] >= 1,
        DISCOVERY_TIMEOUT_S,
        "the DHT to name alice as a Zion node",
    )
    assert seed.status()["dht"] == "server"

    # With the seed gone, what they publish still reaches each other directly.
    seed.stop()
    listing = alice.create_listing("Found through the DHT")
    wait_until(lambda: bob.get_listing(listing["id"]), 20, "the listing to reach bob")
