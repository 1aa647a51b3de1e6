"""Finding Zion peers: members that know only a seed find each other through the DHT
rendezvous (protocols/discovery.py), and a bootstrap peer that was down is dialed again."""

from __future__ import annotations

import socket

from tests.integration.nodes import Spawn, wait_until

#: A member advertises in its first round and looks up every 10 s at first (node/discovery.py).
DISCOVERY_TIMEOUT_S = 45.0
#: The first dial of a bootstrap peer at start, and a redial after it comes back: the peer
#: finder's backoff starts at 5 s and doubles (node/discovery.py), well under the 60 s that
#: py-libp2p's own negative cache would wait.
SEED_DOWN_TIMEOUT_S = 20.0
REDIAL_TIMEOUT_S = 30.0


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
    # Bob's lookup of the rendezvous key names alice: she advertised herself (py-libp2p's DHT
    # may have connected them already while filling its routing table).
    wait_until(
        lambda: alice_id in bob.status()["discovery"]["last_lookup_providers"],
        DISCOVERY_TIMEOUT_S,
        "the DHT to name alice as a Zion node",
    )

    # With the seed gone, what they publish still reaches each other directly.
    seed.stop()
    listing = alice.create_listing("Found through the DHT")
    wait_until(lambda: bob.get_listing(listing["id"]), 20, "the listing to reach bob")


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_autonat_tells_a_reachable_member_from_one_announcing_a_dead_address(
    spawn: Spawn,
) -> None:
    seed = spawn("seed", extra=["--profile", "seed", "--metrics", "127.0.0.1:0"])
    reachable = spawn("reachable", bootstrap=[seed.address])
    hidden = spawn(
        "hidden",
        bootstrap=[seed.address],
        config=f'[network]\nannounce = ["/ip4/127.0.0.1/tcp/{closed_port()}"]\n',
    )
    wait_until(
        lambda: reachable.status()["reachability"] == "public",
        DISCOVERY_TIMEOUT_S,
        "the seed to dial the reachable member back",
    )
    wait_until(
        lambda: hidden.status()["reachability"] == "private",
        DISCOVERY_TIMEOUT_S,
        "the seed to fail to dial the hidden member back",
    )
    # The dial-back used a new connection: the seed still holds one each, as before.
    assert seed.status()["reachability"] == "unknown"  # nobody serves AutoNAT to the seed


def test_a_member_started_before_its_seed_connects_once_the_seed_is_up(spawn: Spawn) -> None:
    """py-libp2p refuses for 60 s to redial a peer whose addresses all failed; the peer
    finder's own backoff (5 s first) decides instead. A devnet starts its members and seed at
    the same moment, and a member whose seed was down a minute should not wait another."""
    listen = f"/ip4/127.0.0.1/tcp/{closed_port()}"
    seed = spawn("seed", listen=listen)
    seed_address = seed.address
    seed.stop()
    member = spawn("member", bootstrap=[seed_address])
    wait_until(
        lambda: "cannot reach bootstrap peer" in member.log_file.read_text(),
        SEED_DOWN_TIMEOUT_S,
        "the member to fail to reach the stopped seed",
    )
    seed.start()
    wait_until(
        lambda: member.connected_to(seed.peer_id),
        REDIAL_TIMEOUT_S,
        "the member to redial the seed (py-libp2p alone would wait 60 s)",
    )
