"""Content throughput: import, gateway download and Bitswap transfer of one large file.

    .venv/bin/python bench/content.py [--mib 256]

Each figure is printed beside hashlib.sha256 over the same bytes in the same run (the
importer cannot beat hashing them), and the import beside Helia's importer on the same file
(when the interop npm packages are installed). Targets (issue 3): import in memory >= 90 % of
the sha256 rate, into the on-disk blockstore >= 50 %, gateway download >= 300 MiB/s.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
from common import NodeProcess, wait_until

from zion.storage.blockstore import Blockstore, BlockWriter
from zion.storage.unixfs import import_file, import_path
from zion.storage.unixfs.importer import DiscardingSink

MIB = 1024 * 1024
INTEROP = Path(__file__).resolve().parent.parent / "tests" / "interop"


def rate(mib: float, seconds: float) -> str:
    return f"{mib / seconds:,.0f} MiB/s ({seconds:.2f} s)"


def best_of(runs: int, work) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def check(label: str, value: float, limit: float, unit: str = "") -> None:
    verdict = "PASS" if value >= limit else "FAIL"
    print(f"  {verdict} {label}: {value:.2f}{unit}; limit {limit:g}{unit}")


def sha256_seconds(path: Path) -> float:
    def work() -> None:
        digest = hashlib.sha256
        with path.open("rb") as stream:
            while chunk := stream.read(MIB):
                digest(chunk).digest()

    return best_of(3, work)


def helia_import_seconds(path: Path) -> tuple[float, str] | None:
    node = shutil.which("node")
    if node is None or not (INTEROP / "node_modules").is_dir():
        return None
    out = subprocess.run(
        [node, "--import", "./polyfill.mjs", "helia_peer.mjs", "import", str(path)],
        cwd=INTEROP,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return float(result["seconds"]), str(result["cid"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=256, help="file size in MiB")
    args = parser.parse_args()
    mib = args.mib
    with tempfile.TemporaryDirectory(prefix="zion-bench-content-") as tmp:
        root = Path(tmp)
        path = root / "file.bin"
        rng = random.Random(1)
        with path.open("wb") as out:
            for _ in range(mib):
                out.write(rng.randbytes(MIB))
        print(f"file: {mib} MiB of random bytes")

        sha = sha256_seconds(path)
        print(f"hashlib.sha256 over the file, 1 MiB reads: {rate(mib, sha)}")

        cid = ""

        def in_memory() -> None:
            nonlocal cid
            cid = str(import_path(path, DiscardingSink()).cid)

        memory = best_of(3, in_memory)
        print(f"import, blocks discarded (in memory): {rate(mib, memory)}")
        check("in-memory import / sha256 rate", sha / memory, 0.9)

        def on_disk() -> None:
            store_dir = root / "blocks"
            shutil.rmtree(store_dir, ignore_errors=True)
            store = Blockstore(store_dir)
            # As the node imports: blocks written (fsync each) on a second thread.
            with path.open("rb") as stream, BlockWriter(store) as sink:
                import_file(stream, sink)

        disk = best_of(3, on_disk)
        print(f"import into the on-disk blockstore (fsync per block): {rate(mib, disk)}")
        check("on-disk import / sha256 rate", sha / disk, 0.5)

        def plain_copy() -> None:
            target = root / "copy.bin"
            target.unlink(missing_ok=True)
            with path.open("rb") as source, target.open("wb") as out:
                while chunk := source.read(MIB):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())

        copy = best_of(3, plain_copy)
        print(f"  for scale, this disk: a plain copy of the file + one fsync: {rate(mib, copy)}")

        helia = helia_import_seconds(path)
        if helia is None:
            print("Helia's importer: skipped (tests/interop/node_modules not installed)")
        else:
            seconds, helia_cid = helia
            same = "same CID" if helia_cid == cid else f"DIFFERENT CID {helia_cid}"
            print(f"Helia's importer (@helia/unixfs, in memory): {rate(mib, seconds)}, {same}")

        a = NodeProcess(root / "a", "a").start()
        b = NodeProcess(root / "b", "b").start(bootstrap=[a.address])
        try:
            with path.open("rb") as stream:
                added = a.api.post(
                    "/api/v1/ipfs/add", files=[("file", ("file.bin", stream))], timeout=600
                )
            added.raise_for_status()
            assert added.json()["cid"] == cid, "the node and the importer disagree"
            wait_until(lambda: b.connected_to(a.peer_id), 15, "b connected to a")

            def download(node: NodeProcess) -> float:
                start = time.perf_counter()
                total = 0
                with httpx.stream("GET", f"{node.base_url}/ipfs/{cid}", timeout=600) as response:
                    for chunk in response.iter_raw(MIB):
                        total += len(chunk)
                seconds = time.perf_counter() - start
                assert total == mib * MIB, total
                return seconds

            gateway = min(download(a) for _ in range(3))
            print(f"gateway download over loopback (httpx client): {rate(mib, gateway)}")
            check("gateway download", mib / gateway, 300, " MiB/s")

            transfer = download(b)
            print(f"Bitswap transfer a -> b, read through b's gateway: {rate(mib, transfer)}")
            print(f"  b then serves it itself: {rate(mib, download(b))}")
        finally:
            a.stop()
            b.stop()


if __name__ == "__main__":
    main()
