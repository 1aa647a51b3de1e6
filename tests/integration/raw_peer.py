"""A bare py-libp2p peer (no Zion node code) that publishes whatever gossip it is given.

Usage: python raw_peer.py TARGET_MULTIADDR PAYLOADS.json
PAYLOADS.json is a list of {"topic": str, "data": hex, "copies": int (optional)}. The peer dials
the target, waits until the target is subscribed to each topic, publishes every payload in order,
prints "published", and stays connected until it is killed (so nothing is cut off in flight).
A payload with "copies" is written straight to the target as one RPC holding that many copies
of the same signed message, as mesh peers forwarding one message at once would deliver it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import multiaddr
import trio
from libp2p import new_host
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.x25519 import create_new_key_pair as create_x25519
from libp2p.custom_types import TProtocol
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.pubsub.gossipsub import GossipSub
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import Pubsub
from libp2p.pubsub.validators import PUBSUB_SIGNING_PREFIX
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE
from libp2p.security.noise.transport import Transport as Noise
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX
from libp2p.stream_muxer.yamux.yamux import Yamux
from libp2p.tools.anyio_service import background_trio_service

from zion.protocols.gossip import message_id


@asynccontextmanager
async def gossip_peer(target: str, topics: list[str]) -> AsyncIterator[tuple[Any, Any, Any]]:
    """A bare host with GossipSub, connected to ``target`` once it is subscribed to ``topics``:
    yields (host, pubsub, target's peer ID)."""
    key_pair = create_new_key_pair()
    host = new_host(
        key_pair=key_pair,
        sec_opt={NOISE: Noise(key_pair, noise_privkey=create_x25519().private_key)},
        muxer_opt={TProtocol(YAMUX): Yamux},
    )
    router = GossipSub(
        protocols=[TProtocol("/meshsub/1.1.0")],
        degree=6,
        degree_low=5,
        degree_high=12,
        heartbeat_interval=1,
        spam_protection_enabled=False,
    )
    pubsub = Pubsub(host, router, msg_id_constructor=lambda m: message_id(m.data))
    listen = [multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]
    async with (
        host.run(listen_addrs=listen),
        background_trio_service(pubsub),
        background_trio_service(router),
    ):
        await pubsub.wait_until_ready()
        info = info_from_p2p_addr(multiaddr.Multiaddr(target))
        await host.connect(info)
        for topic in topics:
            await pubsub.subscribe(topic)
        with trio.fail_after(20):
            while not all(info.peer_id in pubsub.peer_topics.get(t, ()) for t in topics):
                await trio.sleep(0.05)
        yield host, pubsub, info.peer_id


async def main(target: str, payload_file: str) -> None:
    payloads = json.loads(Path(payload_file).read_text())
    topics = sorted({p["topic"] for p in payloads})
    async with gossip_peer(target, topics) as (host, pubsub, target_id):
        private_key, public_key = host.get_private_key(), host.get_public_key()
        for seqno, payload in enumerate(payloads):
            data = bytes.fromhex(payload["data"])
            copies = payload.get("copies", 0)
            if not copies:
                await pubsub.publish(payload["topic"], data)
                continue
            msg = rpc_pb2.Message(
                data=data,
                topicIDs=[payload["topic"]],
                from_id=host.get_id().to_bytes(),
                seqno=seqno.to_bytes(8, "big"),
            )
            signed = PUBSUB_SIGNING_PREFIX.encode() + msg.SerializeToString()
            msg.signature = private_key.sign(signed)
            msg.key = public_key.serialize()
            await pubsub.write_msg(pubsub.peers[target_id], rpc_pb2.RPC(publish=[msg] * copies))
        print("published", flush=True)
        await trio.sleep_forever()


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2])
