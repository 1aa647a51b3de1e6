import pytest

from zion.protocols.errors import ProtocolError
from zion.protocols.framing import FrameDecoder, encode_frame, encode_varint


def test_frames_split_anywhere_are_reassembled() -> None:
    stream = encode_frame(b"hello") + encode_frame(b"") + encode_frame(b"x" * 300)
    decoder = FrameDecoder(max_frame=1000)
    frames = []
    for byte in stream:
        frames += decoder.feed(bytes([byte]))
    assert frames == [b"hello", b"", b"x" * 300]
    assert decoder.pending == 0


def test_oversized_frame_is_refused_before_buffering() -> None:
    decoder = FrameDecoder(max_frame=100)
    with pytest.raises(ProtocolError):
        decoder.feed(encode_varint(101))


def test_endless_varint_is_refused() -> None:
    with pytest.raises(ProtocolError):
        FrameDecoder(max_frame=100).feed(b"\xff" * 10)
