"""Shared pieces of the benchmarks: node processes, CPU accounting, the Ed25519 yardstick."""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import nacl.signing
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.integration.nodes import NodeProcess, wait_until

__all__ = [
    "NodeProcess",
    "compare",
    "cpu_seconds",
    "ed25519_verify_seconds",
    "rss_mib",
    "wait_until",
]

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def rss_mib(pid: int) -> float:
    """Resident memory of a process now, in MiB (Linux /proc)."""
    pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _median_seconds(check: Callable[[], object], rounds: int) -> float:
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(rounds // 5):
            check()
        samples.append((time.perf_counter() - start) / (rounds // 5))
    return statistics.median(samples)


def ed25519_verify_seconds(rounds: int = 20_000) -> dict[str, float]:
    """Median cost of one Ed25519 verification of a 300-byte message, measured now, with the
    verifier the node uses (libsodium via PyNaCl) and with OpenSSL (pyca/cryptography)."""
    key = Ed25519PrivateKey.generate()
    message = os.urandom(300)
    signature = key.sign(message)
    openssl_key = key.public_key()
    sodium_key = nacl.signing.VerifyKey(openssl_key.public_bytes(Encoding.Raw, PublicFormat.Raw))
    return {
        "libsodium (used by the node)": _median_seconds(
            lambda: sodium_key.verify(message, signature), rounds
        ),
        "OpenSSL (cryptography)": _median_seconds(
            lambda: openssl_key.verify(signature, message), rounds
        ),
    }


def compare(
    label: str, measured_s: float, limit_factor: float, yardsticks: dict[str, float]
) -> None:
    """Print ``measured_s`` (seconds per record) against ``limit_factor`` x each yardstick."""
    for name, seconds in yardsticks.items():
        ratio = measured_s / seconds
        verdict = "PASS" if ratio <= limit_factor else "FAIL"
        print(
            f"  {verdict} {label}: {ratio:.2f} x one {name} verification"
            f" ({seconds * 1e6:.1f} us); limit {limit_factor:g} x"
        )
