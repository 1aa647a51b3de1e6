"""The whole governance flow across the network, on anvil: a DAO deployed with `zion dao
deploy`, three members voting from wallets on two nodes with `zion dao vote`, the ballots
gossiped, one node relaying them on-chain, then queue, time, execute, and both nodes' APIs
showing the outcome."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account

from tests.contracts.test_cli_dao import fund
from tests.integration.nodes import wait_until
from tests.integration.test_cli import Spawn, zion
from zion.node.config import ChainConfig, load, update_file

ETH = 10**18


def rpc(url: str, method: str, params: list[Any]) -> Any:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    reply = httpx.post(url, json=body, timeout=10).json()
    assert "error" not in reply, reply
    return reply["result"]


def share_dao(home_a: Path, home_b: Path, password: Path) -> ChainConfig:
    """B joins the DAO that A deployed; A relays ballots with its default wallet."""
    chain = load(home_a / "config.toml").chain
    shared = {"rpc_url": chain.rpc_url, "token": chain.token, "governor": chain.governor,
              "timelock": chain.timelock}  # fmt: skip
    update_file(home_b / "config.toml", "chain", shared)
    update_file(
        home_a / "config.toml", "chain", {"relayer": True, "relayer_password_file": str(password)}
    )
    return chain


@pytest.mark.slow
def test_members_vote_on_two_nodes_and_a_relayer_brings_it_on_chain(
    anvil_url: str, spawn: Spawn, tmp_path: Path
) -> None:
    password = tmp_path / "password"
    password.write_text("a long enough password")
    pw = ["--password-file", str(password)]
    home_a, home_b = tmp_path / "a", tmp_path / "b"
    zion(home_a, "init")
    zion(home_b, "init")
    deployer = zion(home_a, "wallet", "new", *pw).stdout.strip()  # A's default: relays
    voter1 = zion(home_a, "wallet", "new", *pw).stdout.strip()
    voter2 = zion(home_a, "wallet", "new", *pw).stdout.strip()
    voter3 = zion(home_b, "wallet", "new", *pw).stdout.strip()  # B's default
    for address in (deployer, voter1, voter2, voter3):
        fund(anvil_url, address)

    holders = [f"--holder={voter1}=100", f"--holder={voter2}=50", f"--holder={voter3}=30"]
    zion(home_a, "dao", "deploy", "--rpc", anvil_url, "--voting-period-blocks", "20", *holders, *pw)
    chain = share_dao(home_a, home_b, password)
    treasury = {"from": rpc(anvil_url, "eth_accounts", [])[0], "to": chain.timelock,
                "value": hex(5 * ETH)}  # fmt: skip
    rpc(anvil_url, "eth_sendTransaction", [treasury])
    zion(home_a, "dao", "delegate", "--wallet", voter1, *pw)
    zion(home_a, "dao", "delegate", "--wallet", voter2, *pw)
    zion(home_b, "dao", "delegate", *pw)
    rpc(anvil_url, "anvil_mine", ["0x1"])

    recipient = Account.create().address
    proposal = zion(
        home_a, "dao", "propose", "--to", recipient, "--value", "1",
        "--description", "Pay the designer", *pw,
    ).stdout.strip()  # fmt: skip
    rpc(anvil_url, "anvil_mine", ["0x2"])

    a = spawn("a")
    b = spawn("b", bootstrap=[a.address])
    wait_until(lambda: b.connected_to(a.peer_id), 15, "b connected to a")
    zion(home_a, "dao", "vote", proposal, "for", "--wallet", voter1, *pw)
    zion(home_a, "dao", "vote", proposal, "against", "--wallet", voter2, *pw)
    zion(home_b, "dao", "vote", proposal, "for", *pw)  # gossiped to A, relayed by A

    def on_chain(node: Any) -> dict[str, Any]:
        return dict(node.api.get(f"/api/v1/dao/proposals/{proposal}").json())

    wait_until(
        lambda: on_chain(b)["votes"] == {"against": str(50 * ETH), "for": str(130 * ETH),
                                        "abstain": "0"},
        30,
        "all three ballots counted on-chain",
    )  # fmt: skip
    assert on_chain(a)["preview"]["for"] == str(130 * ETH)

    rpc(anvil_url, "anvil_mine", [hex(20)])
    assert on_chain(a)["state"] == "Succeeded"
    zion(home_b, "dao", "queue", proposal, *pw)
    rpc(anvil_url, "evm_increaseTime", [61])
    rpc(anvil_url, "anvil_mine", ["0x1"])
    zion(home_b, "dao", "execute", proposal, *pw)
    assert int(rpc(anvil_url, "eth_getBalance", [recipient, "latest"]), 16) == 1 * ETH
    assert on_chain(a)["state"] == on_chain(b)["state"] == "Executed"

    # Each node's chain watcher files it all once the blocks are confirmed (2 on top).
    rpc(anvil_url, "anvil_mine", ["0x3"])

    def filed(node: Any) -> bool:
        items = node.api.get("/api/v1/dao/proposals").json()["items"]
        return bool(
            items
            and items[0]["id"] == proposal
            and items[0]["last_event"] == "executed"
            and items[0]["votes"]["for"] == str(130 * ETH)
        )

    wait_until(lambda: filed(a) and filed(b), 30, "both nodes' watchers saw the execution")
