"""Length-prefixed frames over a libp2p stream (anything with read/write/close)."""

from __future__ import annotations

from collections import deque
from typing import Final, Protocol

import trio

from zion.protocols.errors import ProtocolError
from zion.protocols.framing import FrameDecoder, encode_frame

READ_CHUNK: Final = 64 * 1024
#: A close that takes longer than this is given up (the stream is reset instead).
CLOSE_TIMEOUT_S: Final = 1.0


class ByteStream(Protocol):
    async def read(self, n: int | None = None) -> bytes: ...

    async def write(self, data: bytes) -> None: ...

    async def close(self) -> None: ...

    async def reset(self) -> None: ...


class StreamClosed(Exception):
    """The other side closed the stream between frames."""


class FramedStream:
    def __init__(self, stream: ByteStream, max_frame: int) -> None:
        self.stream = stream
        self._decoder = FrameDecoder(max_frame)
        self._frames: deque[bytes] = deque()

    async def send(self, payload: bytes) -> None:
        await self.stream.write(encode_frame(payload))

    async def receive(self) -> bytes:
        while not self._frames:
            try:
                data = await self.stream.read(READ_CHUNK)
            except EOFError:  # py-libp2p signals a closed stream so, not with b""
                data = b""
            if not data:
                if self._decoder.pending:
                    raise ProtocolError("malformed", "stream ended inside a frame")
                raise StreamClosed
            self._frames.extend(self._decoder.feed(data))
        return self._frames.popleft()


async def reset_stream(stream: ByteStream) -> None:
    """Abort a stream; one already gone is fine."""
    try:
        await stream.reset()
    except Exception:  # py-libp2p raises many types for a stream that is already gone
        return


async def close_stream(stream: ByteStream) -> None:
    """Close a stream even while being cancelled (someone gave up waiting): shielded, and
    reset if the close does not finish within a second."""
    with trio.CancelScope(shield=True):
        with trio.move_on_after(CLOSE_TIMEOUT_S) as closing:
            try:
                await stream.close()
            except Exception:  # as above
                return
        if closing.cancelled_caught:
            await reset_stream(stream)
