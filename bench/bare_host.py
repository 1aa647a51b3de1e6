"""A bare py-libp2p host (Noise, yamux, identify; no Zion) for bench/seed.py to compare
connection setup against. Prints its multiaddr, then serves until killed."""

from __future__ import annotations

import multiaddr
import trio
from dialer import make_host


async def main() -> None:
    host = make_host()
    async with host.run(listen_addrs=[multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):  # type: ignore[attr-defined]
        print(host.get_addrs()[0], flush=True)  # type: ignore[attr-defined]
        await trio.sleep_forever()


if __name__ == "__main__":
    trio.run(main)
