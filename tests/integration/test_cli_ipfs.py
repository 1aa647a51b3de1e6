"""`zion ipfs ...` end to end against a real node."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

from tests.integration.nodes import NodeProcess
from tests.integration.test_cli import Spawn, zion
from zion.storage.unixfs import PROFILES, import_path
from zion.storage.unixfs.importer import DiscardingSink


def make_tree(root: Path) -> Path:
    tree = root / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "empty").mkdir()
    (tree / "a.txt").write_bytes(b"hello\n")
    (tree / "sub" / "big.bin").write_bytes(random.Random(1).randbytes(3_000_000))
    return tree


def test_only_hash_needs_no_node_and_matches_the_importer(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    home = tmp_path / "nobody"  # never initialised, no node running
    root = zion(home, "ipfs", "add", "-r", "-Q", "--only-hash", str(tree)).stdout.strip()
    assert root == str(import_path(tree, DiscardingSink()).cid)
    legacy = zion(
        home, "ipfs", "add", "-Q", "--only-hash", "--profile", "kubo-legacy", str(tree / "a.txt")
    )
    assert legacy.stdout.strip() == str(
        import_path(tree / "a.txt", DiscardingSink(), PROFILES["kubo-legacy"]).cid
    )
    refused = zion(home, "ipfs", "add", "--only-hash", str(tree), check=False)
    assert refused.returncode != 0 and "-r" in refused.stderr


def test_add_cat_get_pin_gc_car(spawn: Spawn, tmp_path: Path) -> None:
    # Content that is gone should fail fast here, not after the default 30 s of searching.
    zion(tmp_path / "a", "init")
    config = tmp_path / "a" / "config.toml"
    config.write_text(
        config.read_text().replace("retrieval_timeout_s = 30", "retrieval_timeout_s = 2")
    )
    node: NodeProcess = spawn("a")
    home = node.home
    tree = make_tree(tmp_path)

    expected = zion(home, "ipfs", "add", "-r", "-Q", "--only-hash", str(tree)).stdout.strip()
    added = zion(home, "ipfs", "add", "-r", str(tree)).stdout.splitlines()
    assert added[-1] == f"added {expected} tree"
    assert any(line.endswith(" tree/sub/big.bin") for line in added)

    cat = subprocess.run(
        [
            sys.executable,
            "-m",
            "zion",
            "--home",
            str(home),
            "ipfs",
            "cat",
            f"{expected}/sub/big.bin",
        ],
        capture_output=True,
        timeout=60,
    )
    assert cat.returncode == 0 and cat.stdout == (tree / "sub" / "big.bin").read_bytes()

    directory = zion(home, "ipfs", "cat", expected, check=False)
    assert directory.returncode != 0 and "is a directory" in directory.stderr

    out = tmp_path / "copy"
    zion(home, "ipfs", "get", expected, "-o", str(out))
    assert (out / "a.txt").read_bytes() == b"hello\n"
    assert (out / "sub" / "big.bin").read_bytes() == (tree / "sub" / "big.bin").read_bytes()
    assert (out / "empty").is_dir()

    assert zion(home, "ipfs", "pin", "ls").stdout.split() == [expected, "user"]
    car = tmp_path / "tree.car"
    zion(home, "ipfs", "car", "export", expected, "-o", str(car))
    zion(home, "ipfs", "pin", "rm", expected)
    assert "removed" in zion(home, "ipfs", "gc").stdout
    assert json.loads(zion(home, "status", "--json").stdout)["content"]["blocks"] == 0
    missing = zion(home, "ipfs", "cat", f"{expected}/a.txt", check=False)
    assert missing.returncode != 0 and "504" in missing.stderr

    assert zion(home, "ipfs", "car", "import", str(car)).stdout.strip() == expected
    assert zion(home, "ipfs", "cat", f"{expected}/a.txt").stdout == "hello\n"


def test_listings_add_takes_image_files(spawn: Spawn, tmp_path: Path) -> None:
    node = spawn("a")
    photo = tmp_path / "kayak.png"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n" + random.Random(2).randbytes(20_000))
    listing_id = zion(
        node.home,
        "listings", "add", "--title", "Kayak", "--price", "300", "--category", "sport",
        "--image", str(photo),
    ).stdout.strip()  # fmt: skip
    listing = node.get_listing(listing_id)
    assert listing is not None
    (image,) = listing["images"]
    assert node.api.get(f"/ipfs/{image}").content == photo.read_bytes()
