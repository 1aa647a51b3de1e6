"""Dials a libp2p peer over and over: new TCP + Noise + yamux connections, then hangs up.

    python bench/dialer.py TARGET_MULTIADDR --connections 200 --parallel 8

``--parallel`` identities (hosts) each connect, wait until the connection is up, disconnect,
and go again, until ``--connections`` connections were set up in all. Prints one JSON line:
{"connections": N, "seconds": S, "failures": F}.
"""

from __future__ import annotations

import argparse
import json
import time
from contextlib import AsyncExitStack

import multiaddr
import trio
from libp2p import new_host
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.x25519 import create_new_key_pair as create_x25519
from libp2p.custom_types import TProtocol
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE
from libp2p.security.noise.transport import Transport as Noise
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX
from libp2p.stream_muxer.yamux.yamux import Yamux

DIAL_TIMEOUT_S = 15


def make_host() -> object:
    key_pair = create_new_key_pair()
    return new_host(
        key_pair=key_pair,
        sec_opt={NOISE: Noise(key_pair, noise_privkey=create_x25519().private_key)},
        muxer_opt={TProtocol(YAMUX): Yamux},
    )


async def main(target: str, connections: int, parallel: int) -> None:
    info = info_from_p2p_addr(multiaddr.Multiaddr(target))
    hosts = [make_host() for _ in range(parallel)]
    done = failures = 0
    listen = [multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]

    async def worker(host: object) -> None:
        nonlocal done, failures
        while done + failures < connections:
            try:
                with trio.fail_after(DIAL_TIMEOUT_S):
                    await host.connect(info)  # type: ignore[attr-defined]
                    await host.disconnect(info.peer_id)  # type: ignore[attr-defined]
                done += 1
            except Exception:  # counted: a refused or timed-out dial
                failures += 1

    async with AsyncExitStack() as stack:
        for host in hosts:
            await stack.enter_async_context(host.run(listen_addrs=listen))  # type: ignore[attr-defined]
        started = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for host in hosts:
                nursery.start_soon(worker, host)
        seconds = time.perf_counter() - started
    print(json.dumps({"connections": done, "seconds": seconds, "failures": failures}), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("target")
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--parallel", type=int, default=8)
    args = parser.parse_args()
    trio.run(main, args.target, args.connections, args.parallel)
