"""A bare py-libp2p Kademlia DHT server (no Zion node code), for provider-discovery tests.

Usage: python raw_dht_server.py
Prints its multiaddr (with /p2p/...) on the first line, then serves until killed. It speaks
only identify, ping and /ipfs/kad/1.0.0: it can tell who provides a CID, never the content.
"""

from __future__ import annotations

import multiaddr
import trio
from libp2p import new_host
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.x25519 import create_new_key_pair as create_x25519
from libp2p.custom_types import TProtocol
from libp2p.kad_dht.kad_dht import DHTMode, KadDHT
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE
from libp2p.security.noise.transport import Transport as Noise
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX
from libp2p.stream_muxer.yamux.yamux import Yamux
from libp2p.tools.anyio_service import background_trio_service


async def main() -> None:
    key_pair = create_new_key_pair()
    host = new_host(
        key_pair=key_pair,
        sec_opt={NOISE: Noise(key_pair, noise_privkey=create_x25519().private_key)},
        muxer_opt={TProtocol(YAMUX): Yamux},
    )
    dht = KadDHT(host, DHTMode.SERVER)
    async with (
        host.run(listen_addrs=[multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]),
        background_trio_service(dht),
    ):
        print(f"{host.get_addrs()[0]}", flush=True)
        await trio.sleep_forever()


if __name__ == "__main__":
    trio.run(main)
