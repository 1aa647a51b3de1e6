"""A bare py-libp2p peer (no Zion node code) that writes raw Bitswap frames to a target.

Usage: python raw_bitswap_peer.py TARGET_MULTIADDR FRAMES.json [WANT_CID]
FRAMES.json is a list of hex strings, each written as-is (length prefix included, so frames
can lie about their length) on its own new /ipfs/bitswap/1.2.0 stream. With WANT_CID, it then
sends a want-block for it and prints "received <hex>" when the block arrives on a stream the
target opens. Prints "sent" after the frames, and stays up until killed.
"""

from __future__ import annotations

import json
import sys
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
from zion.protocols.cid import Cid
from zion.protocols.framing import FrameDecoder, encode_frame

BITSWAP = TProtocol("/ipfs/bitswap/1.2.0")


async def main(target: str, frames_file: str, want: str | None) -> None:
    frames = [bytes.fromhex(f) for f in json.loads(Path(frames_file).read_text())]
    key_pair = create_new_key_pair()
    host = new_host(
        key_pair=key_pair,
        sec_opt={NOISE: Noise(key_pair, noise_privkey=create_x25519().private_key)},
        muxer_opt={TProtocol(YAMUX): Yamux},
    )

    async def on_stream(stream: object) -> None:
        decoder = FrameDecoder(4 * 1024 * 1024)
        while data := await stream.read(65536):  # type: ignore[attr-defined]
            for frame in decoder.feed(data):
                for _cid, block in decode_message(frame).blocks:
                    print("received", block.hex(), flush=True)

    host.set_stream_handler(BITSWAP, on_stream)
    async with host.run(listen_addrs=[multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
        info = info_from_p2p_addr(multiaddr.Multiaddr(target))
        await host.connect(info)
        for frame in frames:
            stream = await host.new_stream(info.peer_id, [BITSWAP])
            try:
                await stream.write(frame)
                await stream.close()
            except Exception as exc:  # the target may reset a stream it finds hostile
                print("reset:", exc, flush=True)
        print("sent", flush=True)
        if want:
            message = Message(wants=[Want(Cid.parse(want), send_dont_have=True)])
            stream = await host.new_stream(info.peer_id, [BITSWAP])
            await stream.write(encode_frame(encode_message(message)))
            await stream.close()
        await trio.sleep_forever()


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
