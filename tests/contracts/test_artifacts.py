"""The committed artifacts are what the pinned compiler makes of the committed sources."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from zion.contracts import artifacts

CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "contracts"


def test_every_artifact_loads_with_abi_and_bytecode() -> None:
    for name in artifacts.ALL:
        artifact = artifacts.load(name)
        assert artifact.bytecode.startswith("0x") and len(artifact.bytecode) > 1000
        assert (
            artifact.deployed_bytecode.startswith("0x") and len(artifact.deployed_bytecode) > 1000
        )
        assert any(item.get("type") == "constructor" for item in artifact.abi)
        assert artifact.compiler.startswith("0.8.28+")
    governor = {item.get("name") for item in artifacts.load(artifacts.GOVERNOR).abi}
    assert {"castVoteBySig", "propose", "queue", "execute", "eip712Domain"} <= governor
    with pytest.raises(KeyError):
        artifacts.load("Nope")


@pytest.mark.slow
def test_recompiling_gives_the_committed_bytes() -> None:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        if os.environ.get("CI"):
            pytest.fail("node and npm are needed to recompile the contracts")
        pytest.skip("node/npm not installed")
    if not (CONTRACTS_DIR / "node_modules" / "solc").is_dir():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=CONTRACTS_DIR,
            check=True,
            timeout=300,
        )
    result = subprocess.run(
        [node, "compile.mjs", "--check"],
        cwd=CONTRACTS_DIR,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "artifacts match the sources" in result.stdout
