"""The compiled contracts, committed as JSON (contracts/artifacts/), so that the node never needs
Node.js or a Solidity compiler: `npm ci && node compile.mjs` in contracts/ rebuilds them, and
tests/contracts/test_artifacts.py checks that a rebuild gives the same bytes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Final

TOKEN: Final = "ZionToken"  # noqa: S105 (a contract name, not a secret)
GOVERNOR: Final = "ZionGovernor"
TIMELOCK: Final = "TimelockController"
ALL: Final = (TOKEN, GOVERNOR, TIMELOCK)


@dataclass(frozen=True)
class Artifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    compiler: str


@cache
def load(name: str) -> Artifact:
    if name not in ALL:
        raise KeyError(f"no contract artifact {name!r}; one of {', '.join(ALL)}")
    text = resources.files("zion.contracts").joinpath("artifacts", f"{name}.json").read_text()
    data = json.loads(text)
    return Artifact(
        name=data["contractName"],
        abi=data["abi"],
        bytecode=data["bytecode"],
        deployed_bytecode=data["deployedBytecode"],
        compiler=data["compiler"]["version"],
    )
