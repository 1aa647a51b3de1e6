"""A bare py-libp2p peer that uses a relay (circuit relay v2), as a member behind NAT would.

Usage:
  python -m tests.integration.raw_relay_client RELAY_MULTIADDR reserve
      reserve a slot at the relay; print "reserved", "refused" (no slot free) or "no relay:
      ..." (it does not speak the protocol), then answer /echo/1.0.0
      streams (through the relay) until killed.
  python -m tests.integration.raw_relay_client RELAY_MULTIADDR reserve-for-another
      ask for a slot in the name of another peer ID; print "reserved" or "refused <status>".
  python -m tests.integration.raw_relay_client RELAY_MULTIADDR dial PEER_ID [IDLE_S]
      dial PEER_ID through the relay, send "hello" on /echo/1.0.0, print "echo <reply>";
      with IDLE_S, stay idle that long, then print "still connected" or "closed" (the
      relay ended the circuit).
"""

from __future__ import annotations

import sys
from contextlib import AsyncExitStack

import multiaddr
import trio
from libp2p import new_host
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.x25519 import create_new_key_pair as create_x25519
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.relay.circuit_v2 import PROTOCOL_ID as HOP_PROTOCOL_ID
from libp2p.relay.circuit_v2 import CircuitV2Protocol, CircuitV2Transport
from libp2p.relay.circuit_v2.config import RelayConfig
from libp2p.relay.circuit_v2.pb.circuit_pb2 import HopMessage, PeerId
from libp2p.relay.circuit_v2.protocol_buffer import StatusCode
from libp2p.relay.circuit_v2.utils import read_delimited_msg, write_delimited_msg
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE
from libp2p.security.noise.transport import Transport as Noise
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX
from libp2p.stream_muxer.yamux.yamux import Yamux
from libp2p.tools.anyio_service import background_trio_service

ECHO = TProtocol("/echo/1.0.0")
TIMEOUT_S = 20


async def main(relay: str, mode: str, target: str = "", idle_s: str = "") -> None:
    key_pair = create_new_key_pair()
    host = new_host(
        key_pair=key_pair,
        sec_opt={NOISE: Noise(key_pair, noise_privkey=create_x25519().private_key)},
        muxer_opt={TProtocol(YAMUX): Yamux},
    )

    async def echo(stream: object) -> None:
        data = await stream.read(64)  # type: ignore[attr-defined]
        await stream.write(data)  # type: ignore[attr-defined]
        await stream.close()  # type: ignore[attr-defined]

    host.set_stream_handler(ECHO, echo)
    relay_info = info_from_p2p_addr(multiaddr.Multiaddr(relay))
    # A member behind NAT: reachable only through the relay (no address to dial directly).
    listen = [] if mode == "reserve" else [multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]
    async with AsyncExitStack() as stack, trio.open_nursery() as nursery:
        await stack.enter_async_context(host.run(listen_addrs=listen))
        protocol = CircuitV2Protocol(host, allow_hop=False)  # answers the relay's STOP
        await stack.enter_async_context(background_trio_service(protocol))
        transport = CircuitV2Transport(host, protocol, RelayConfig())
        with trio.fail_after(TIMEOUT_S):
            await host.connect(relay_info)
        print(f"peer {host.get_id().to_base58()}", flush=True)
        if mode == "reserve-for-another":
            with trio.fail_after(TIMEOUT_S):
                print(await reserve_for_another(host, relay_info.peer_id), flush=True)
            return
        if mode == "reserve":
            with trio.fail_after(TIMEOUT_S):
                try:
                    stream = await host.new_stream(relay_info.peer_id, [HOP_PROTOCOL_ID])
                except Exception as exc:  # py-libp2p raises several types for "not spoken"
                    print(f"no relay: {exc}", flush=True)
                    return
                reserved = await transport.reserve(stream, relay_info.peer_id, nursery)
            print("reserved" if reserved else "refused", flush=True)
            await trio.sleep_forever()
        with trio.fail_after(TIMEOUT_S):
            await transport.dial(multiaddr.Multiaddr(f"{relay}/p2p-circuit/p2p/{target}"))
            print(f"echo {await echo_through(host, target)}", flush=True)
        if idle_s:
            await trio.sleep(float(idle_s))  # the idle time being tested
            connected = ID.from_base58(target) in host.get_connected_peers()
            print("still connected" if connected else "closed", flush=True)
        nursery.cancel_scope.cancel()


async def reserve_for_another(host: object, relay: ID) -> str:
    stream = await host.new_stream(relay, [HOP_PROTOCOL_ID])  # type: ignore[attr-defined]
    other = ID.from_pubkey(create_new_key_pair().public_key)
    await write_delimited_msg(
        stream, HopMessage(type=HopMessage.RESERVE, peer=PeerId(id=other.to_bytes()))
    )
    answer = await read_delimited_msg(stream, HopMessage)
    return "reserved" if answer.status == StatusCode.OK else f"refused {int(answer.status)}"


async def echo_through(host: object, target: str) -> str:
    stream = await host.new_stream(ID.from_base58(target), [ECHO])  # type: ignore[attr-defined]
    await stream.write(b"hello")
    return str((await stream.read(64)).decode())


if __name__ == "__main__":
    trio.run(main, *sys.argv[1:])
