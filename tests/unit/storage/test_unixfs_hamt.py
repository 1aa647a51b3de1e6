"""Sharded directories against CIDs from the real JS importer.

Expected CIDs: ipfs-unixfs-importer 17.1.1 (Helia's), directory "d" of N files named
``entry-{i}.txt`` (``entry-{i}-é.txt`` when i % 7 == 0) holding ``f"{i}\\n"``, options
``{profile: 'unixfs-v1-2025'}``, ``{cidVersion: 0, rawLeaves: false}`` and
``{cidVersion: 1, rawLeaves: true}``. 5000 entries shard under the block estimate only.
"""

import pytest

from tests.unit.storage.unixfs_helpers import MemoryBlocks
from zion.protocols.dagpb import decode_node
from zion.protocols.unixfs import DataType, decode_data
from zion.storage.unixfs import PROFILES, exporter, import_bytes
from zion.storage.unixfs.hamt import slot
from zion.storage.unixfs.importer import build_directory

JS_IMPORTER = {
    ("unixfs-v1-2025", 100): "bafybeiai6qdr3bwccwynesjn2opthqzxfwgrgyukjqwbag3vanrrrykrj4",
    ("kubo-legacy", 100): "QmSdXMrDeC7hrTwWYui4bRJcYSWBJa4SAQqz8FgaZTh6tU",
    ("kubo-cidv1", 100): "bafybeiai6qdr3bwccwynesjn2opthqzxfwgrgyukjqwbag3vanrrrykrj4",
    ("unixfs-v1-2025", 5000): "bafybeid6x33lcg6pycsaju7rkdw5oaplmxwmmllfnf7jshivmzxd3mpsgq",
    ("kubo-legacy", 5000): "QmYAsqqaLAaHcEAfN2A7vSNMUQcpJRS7ytAtpvVK9aSPWN",
    ("kubo-cidv1", 5000): "bafybeidfu6rz7boeaqmx4takhjraxa6oq347s3ablv57vweez57q3szbmm",
    ("unixfs-v1-2025", 6000): "bafybeihywkmjdwcilyqget2cb44u2g64nb4fsuhcue46hrnz3e35fyhvwe",
    ("kubo-legacy", 6000): "QmeptzieuGirP6aXjqUd2NShfJt55zeZX6GG9xovhZCwyU",
    ("kubo-cidv1", 6000): "bafybeihywkmjdwcilyqget2cb44u2g64nb4fsuhcue46hrnz3e35fyhvwe",
}


def entry_name(i: int) -> str:
    return f"entry-{i}{'-é' if i % 7 == 0 else ''}.txt"


def make_directory(profile: str, count: int, blocks: MemoryBlocks):  # type: ignore[no-untyped-def]
    entries = [
        (entry_name(i), import_bytes(f"{i}\n".encode(), blocks, PROFILES[profile]))
        for i in range(count)
    ]
    return build_directory(entries, blocks, PROFILES[profile])


@pytest.mark.parametrize(("profile", "count"), sorted(JS_IMPORTER))
def test_directory_cids_match_the_js_importer(profile: str, count: int) -> None:
    assert str(make_directory(profile, count, MemoryBlocks()).cid) == JS_IMPORTER[profile, count]


async def test_sharded_directory_lists_and_resolves_every_entry() -> None:
    blocks = MemoryBlocks()
    root = make_directory("kubo-cidv1", 6000, blocks).cid
    node = await exporter.stat(blocks, root)
    assert node.type == DataType.HAMT_SHARD
    names = [entry.name async for entry in exporter.list_directory(blocks, node)]
    assert sorted(names) == sorted(entry_name(i) for i in range(6000))
    for i in (0, 7, 1234, 5999):
        found = await exporter.resolve(blocks, root, [entry_name(i)])
        content = b"".join([piece async for piece in exporter.read_file(blocks, found)])
        assert content == f"{i}\n".encode()
    with pytest.raises(exporter.NoSuchPath):
        await exporter.resolve(blocks, root, ["entry-6000.txt"])


def test_shard_root_layout() -> None:
    blocks = MemoryBlocks()
    root = make_directory("kubo-cidv1", 6000, blocks).cid
    pb = decode_node(blocks.store[root.multihash])
    data = decode_data(pb.data or b"")
    assert (data.fanout, data.hash_type, data.filesize) == (256, 0x22, None)
    used = {int(link.name[:2], 16) for link in pb.links}
    assert int.from_bytes(data.data, "big") == sum(1 << index for index in used)


def test_slot_is_the_big_endian_murmur3_prefix() -> None:
    # From Helia: "a.txt" hashes to 0x59a0..., so its link is named "59a.txt".
    assert slot(b"a.txt", 0) == 0x59
    assert slot(b"a.txt", 1) == 0xA0


async def test_a_shard_reached_twice_is_refused() -> None:
    """Crafted: every slot of the root links the same sub-shard, which would list its
    entries 256 times per level."""
    from zion.protocols.cid import DAG_PB, Cid
    from zion.protocols.dagpb import PBLink, encode_node
    from zion.protocols.unixfs import UnixFsData, encode_data
    from zion.storage.unixfs.errors import UnixFsError

    blocks = MemoryBlocks()
    leaf = import_bytes(b"x", blocks, PROFILES["kubo-cidv1"])

    def shard(links: list[PBLink], slots: int) -> Cid:
        bitfield = (1 << slots) - 1
        data = UnixFsData(
            DataType.HAMT_SHARD,
            data=bitfield.to_bytes((bitfield.bit_length() + 7) // 8, "big"),
            hash_type=0x22,
            fanout=256,
        )
        block = encode_node(encode_data(data), links)
        cid = Cid.for_block(DAG_PB, block)
        blocks.put(cid, block)
        return cid

    child = shard([PBLink(leaf.cid, "00x.txt", 1)], 1)
    root = shard([PBLink(child, f"{slot:02X}", 100) for slot in range(256)], 256)
    node = await exporter.stat(blocks, root)
    with pytest.raises(UnixFsError):
        async for _ in exporter.list_directory(blocks, node):
            pass
