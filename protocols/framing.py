"""Length-prefixed frames (unsigned varint length, then payload), as libp2p protocols use.

Sans-IO: the reader feeds whatever bytes arrived and takes out whole frames.
"""

from zion.protocols.errors import ProtocolError

_MAX_VARINT_BYTES = 9


def encode_varint(value: int) -> bytes:
    if value < 0:
        raise ValueError("varint must be non-negative")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_frame(payload: bytes) -> bytes:
    return encode_varint(len(payload)) + payload


class FrameDecoder:
    """Buffers stream bytes and yields complete frames no larger than ``max_frame``."""

    def __init__(self, max_frame: int) -> None:
        self._max_frame = max_frame
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        frames: list[bytes] = []
        while True:
            header = self._read_header()
            if header is None:
                return frames
            length, offset = header
            if len(self._buffer) < offset + length:
                return frames
            frames.append(bytes(self._buffer[offset : offset + length]))
            del self._buffer[: offset + length]

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def _read_header(self) -> tuple[int, int] | None:
        value = 0
        for index, byte in enumerate(self._buffer[:_MAX_VARINT_BYTES]):
            value |= (byte & 0x7F) << (7 * index)
            if not byte & 0x80:
                if value > self._max_frame:
                    raise ProtocolError("oversized", f"frame of {value} bytes")
                return value, index + 1
        if len(self._buffer) >= _MAX_VARINT_BYTES:
            raise ProtocolError("malformed", "frame length varint too long")
        return None
