"""`zion dao deploy|status|delegate` against anvil, with a keystore wallet from `zion wallet`."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.integration.test_cli import zion
from zion.node.config import load


def fund(anvil_url: str, address: str) -> None:
    accounts = httpx.post(
        anvil_url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_accounts", "params": []}
    ).json()["result"]
    tx = {"from": accounts[0], "to": address, "value": hex(10 * 10**18)}
    body = {"jsonrpc": "2.0", "id": 2, "method": "eth_sendTransaction", "params": [tx]}
    assert "result" in httpx.post(anvil_url, json=body).json()


@pytest.mark.slow
def test_deploy_status_delegate(anvil_url: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    zion(home, "init")
    password = tmp_path / "password"
    password.write_text("a long enough password")
    address = zion(home, "wallet", "new", "--password-file", str(password)).stdout.strip()

    missing = zion(home, "dao", "status", check=False)
    assert missing.returncode != 0 and "zion dao deploy" in missing.stderr

    wrong = tmp_path / "wrong"
    wrong.write_text("not the password")
    refused = zion(
        home, "dao", "deploy", "--rpc", anvil_url, "--password-file", str(wrong), check=False
    )
    assert refused.returncode != 0 and "wrong password" in refused.stderr

    fund(anvil_url, address)
    out = zion(home, "dao", "deploy", "--rpc", anvil_url, "--password-file", str(password)).stdout
    chain = load(home / "config.toml").chain
    assert chain.deployed and chain.rpc_url == anvil_url
    assert f"governor  {chain.governor}" in out

    status = zion(home, "dao", "status").stdout
    assert "supply    1,000,000" in status
    assert f"you       {address}: 1,000,000 tokens, 0 votes" in status
    zion(home, "dao", "delegate", "--password-file", str(password))
    assert f"{address}: 1,000,000 tokens, 1,000,000 votes" in zion(home, "dao", "status").stdout
