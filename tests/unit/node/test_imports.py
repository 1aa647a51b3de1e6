"""`zion run` and the CLI start without the heavy optional SDKs: each takes a second or so to
import (python -X importtime), paid on every node start and every command. openai is loaded
when an AI bridge is configured, web3 and eth-account when a chain or a wallet is used."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("openai", "web3", "eth_account")


@pytest.mark.parametrize("module", ["zion.node.daemon", "zion.node.cli"])
def test_importing_does_not_load_the_heavy_sdks(module: str, tmp_path: Path) -> None:
    code = (
        f"import json, sys, {module}\n"
        f"print(json.dumps([name for name in {HEAVY!r} if name in sys.modules]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert loaded == [], f"importing {module} loads {loaded} (python -X importtime shows why)"
