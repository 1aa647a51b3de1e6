"""Every CID in tests/vectors/unixfs (a copy of ../shared/vectors/unixfs), for every profile,
and export(import(x)) == x."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.storage.unixfs_helpers import MemoryBlocks
from zion.protocols.cid import Cid
from zion.storage.unixfs import PROFILES, exporter, import_path
from zion.storage.unixfs.importer import DiscardingSink

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "unixfs"
CIDS = json.loads((VECTORS / "cids.json").read_text())
CASES = [(profile, name, cid) for profile, table in CIDS.items() for name, cid in table.items()]
#: The one entry that is not a profile: Helia's addBytes with no options.
PROFILE_OF = {"helia-addBytes-defaults": "unixfs-v1-2025"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    subprocess.run(
        [sys.executable, VECTORS / "make_corpus.py", VECTORS / "corpus.json", out], check=True
    )
    return out


@pytest.mark.parametrize(("profile", "name", "expected"), CASES)
def test_cid_matches_helia(corpus: Path, profile: str, name: str, expected: str) -> None:
    node = import_path(
        corpus / name.rstrip("/"), DiscardingSink(), PROFILES[PROFILE_OF.get(profile, profile)]
    )
    assert str(node.cid) == expected


@pytest.mark.parametrize("profile", sorted(PROFILES))
async def test_export_of_import_is_the_input(corpus: Path, profile: str) -> None:
    blocks = MemoryBlocks()
    for path in sorted(corpus.rglob("*")):
        if path.is_file():
            node = import_path(path, blocks, PROFILES[profile])
            stat = await exporter.stat(blocks, node.cid)
            assert stat.size == path.stat().st_size
            parts = [piece async for piece in exporter.read_file(blocks, stat)]
            assert b"".join(parts) == path.read_bytes(), path


async def test_directory_listing_and_paths(corpus: Path) -> None:
    blocks = MemoryBlocks()
    root = import_path(corpus / "dir", blocks).cid
    node = await exporter.stat(blocks, root)
    names = [entry.name async for entry in exporter.list_directory(blocks, node)]
    assert names == ["empty.txt", "hello.txt", "sub"]
    html = await exporter.resolve(blocks, root, ["sub", "index.html"])
    content = b"".join([piece async for piece in exporter.read_file(blocks, html)])
    assert content == (corpus / "dir" / "sub" / "index.html").read_bytes()
    with pytest.raises(exporter.NoSuchPath):
        await exporter.resolve(blocks, root, ["sub", "missing"])
    with pytest.raises(exporter.NoSuchPath):
        await exporter.resolve(blocks, root, ["hello.txt", "below-a-file"])
    assert isinstance(root, Cid)
