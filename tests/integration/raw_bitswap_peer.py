"""A bare py-libp2p peer (no Zion node code) that writes raw Bitswap frames to a target.

Usage: python raw_bitswap_peer.py TARGET_MULTIADDR [--frames FRAMES.json] [--want CID]
                                  [--serve HEX]
--frames: a JSON list of hex strings, each written as-is (length prefix included, so frames
can lie about their length) on its own new /ipfs/bitswap/1.2.0 stream; "sent" is printed after.
--want: then send a want-block for CID; print "received <hex>" when a block arrives.
--serve: answer any want for the block HEX with, in order, a forged block (other bytes under
the same CID prefix), a frame announcing an oversized message, and then the real block.
Prints "ready" once connected, and stays up until killed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

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

from zion.protocols.bitswap import Message, Want, decode_message, encode_message
from zion.protocols.cid import RAW, Cid
from zion.protocols.framing import FrameDecoder, encode_frame, encode_varint

BITSWAP = TProtocol("/ipfs/bitswap/1.2.0")


async def main(target: str, frames_file: str | None, want: str | None, serve: str | None) -> None:
    frames = (
        [bytes.fromhex(f) for f in json.loads(Path(frames_file).read_text())] if frames_file else []
    )
    served = bytes.fromhex(serve) if serve else None
    key_pair = create_new_key_pair()
    host = new_host(
        key_pair=key_pair,
        sec_opt={NOISE: Noise(key_pair, noise_privkey=create_x25519().private_key)},
        muxer_opt={TProtocol(YAMUX): Yamux},
    )
    info = info_from_p2p_addr(multiaddr.Multiaddr(target))

    async def send(frame: bytes) -> None:
        stream = await host.new_stream(info.peer_id, [BITSWAP])
        try:
            await stream.write(frame)
            await stream.close()
        except Exception as exc:  # the target may reset a stream it finds hostile
            print("reset:", exc, flush=True)

    async def answer(wanted: Cid) -> None:
        assert served is not None
        forged = served + b" (forged)"
        # The real block's CID with the forged bytes: a block that does not hash to its CID.
        await send(encode_frame(encode_message(Message(blocks=[(wanted, forged)]))))
        await send(encode_varint(8 * 1024 * 1024) + b"\0" * 1024)
        await send(encode_frame(encode_message(Message(blocks=[(wanted, served)]))))
        print("answered", flush=True)

    async def on_stream(stream: object) -> None:
        decoder = FrameDecoder(4 * 1024 * 1024)
        try:
            while data := await stream.read(65536):  # type: ignore[attr-defined]
                for frame in decoder.feed(data):
                    message = decode_message(frame)
                    for _cid, block in message.blocks:
                        print("received", block.hex(), flush=True)
                    for entry in message.wants:
                        if served is not None and entry.cid == Cid.for_block(RAW, served):
                            await answer(entry.cid)
        except EOFError:
            pass

    host.set_stream_handler(BITSWAP, on_stream)
    async with host.run(listen_addrs=[multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
        await host.connect(info)
        print("ready", flush=True)
        for frame in frames:
            await send(frame)
        print("sent", flush=True)
        if want:
            message = Message(wants=[Want(Cid.parse(want), send_dont_have=True)])
            await send(encode_frame(encode_message(message)))
        await trio.sleep_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("target")
    parser.add_argument("--frames")
    parser.add_argument("--want")
    parser.add_argument("--serve")
    args = parser.parse_args()
    trio.run(main, args.target, args.frames, args.want, args.serve)
