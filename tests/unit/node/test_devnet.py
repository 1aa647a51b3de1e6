"""`zion devnet`'s parts that need no processes: its directory (refusals, the lock, leftovers of
a killed run), the config.toml it writes for each node, and where it looks for anvil."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from eth_account import Account

from zion.contracts.client import Deployment
from zion.node.cli import cli
from zion.node.config import load
from zion.node.devnet import Devnet, DevnetNode, DevnetOptions, render_toml
from zion.node.devnet_chain import DevnetDao, find_anvil
from zion.node.devnet_dir import DevnetDir
from zion.node.devnet_procs import start_ticks
from zion.node.errors import NodeError

SEED_ADDRESS = "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWGmmp9sHHgghEUGC62vpiMu33ePCYWED8gABDcS3WPChB"


def options(tmp_path: Path, **changes: object) -> DevnetOptions:
    values: dict[str, object] = {
        "nodes": 3,
        "directory": tmp_path / "devnet",
        "anvil": Path("/usr/bin/true"),
        "stripe": True,
        "ai": True,
        "password": "a devnet password",
        "block_time_s": 1,
        "rpc_port": 0,
    }
    return DevnetOptions(**{**values, **changes})  # type: ignore[arg-type]


def test_a_directory_is_refused_when_it_holds_other_things(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(NodeError, match="not a devnet's directory"):
        DevnetDir.open(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    with pytest.raises(NodeError, match="is a file"):
        DevnetDir.open(tmp_path / "notes.txt")


def test_a_directory_is_locked_while_a_devnet_runs_and_reused_after(tmp_path: Path) -> None:
    first = DevnetDir.open(tmp_path / "d")
    assert stat.S_IMODE(first.path.stat().st_mode) == 0o700
    with pytest.raises(NodeError, match=rf"another zion devnet \(pid {os.getpid()}\)"):
        DevnetDir.open(tmp_path / "d")
    first.write_state({"state": "stopped", "processes": []})
    assert stat.S_IMODE(first.state_file.stat().st_mode) == 0o600
    first.close()
    again = DevnetDir.open(tmp_path / "d")
    # A new run's devnet.json is not there until it is written: nobody reads the last one's.
    assert not again.state_file.exists()
    again.close()


def test_processes_left_by_a_killed_devnet_are_named_not_run_over(tmp_path: Path) -> None:
    directory = DevnetDir.open(tmp_path / "d")
    me = {"name": "seed", "pid": os.getpid(), "pgid": os.getpgid(0)}
    gone = {"name": "anvil", "pid": os.getpid(), "pgid": 1, "start_ticks": 1}  # a reused PID
    directory.write_state({"processes": [{**me, "start_ticks": start_ticks(os.getpid())}, gone]})
    directory.close()
    with pytest.raises(NodeError, match=rf"seed \(pid {os.getpid()}\)") as refused:
        DevnetDir.open(tmp_path / "d")
    assert "anvil" not in str(refused.value)
    assert f"kill -- -{os.getpgid(0)}" in str(refused.value)


def test_nodes_and_passwords_are_checked(tmp_path: Path) -> None:
    with pytest.raises(NodeError, match="--nodes"):
        options(tmp_path, nodes=1)
    with pytest.raises(NodeError, match="--wallet-password"):
        options(tmp_path, password="short")


def test_bad_flags_are_refused_before_anything_starts(tmp_path: Path) -> None:
    new_dir = tmp_path / "new"
    runner = CliRunner()
    result = runner.invoke(cli, ["devnet", "--dir", str(new_dir), "--nodes", "0"])
    assert result.exit_code == 2 and "--nodes" in result.output
    result = runner.invoke(cli, ["devnet", "--dir", str(new_dir), "--anvil", "/nonexistent"])
    assert isinstance(result.exception, NodeError)
    assert "not an executable anvil" in str(result.exception)
    assert not new_dir.exists()


def test_the_config_it_writes_is_one_the_node_takes(tmp_path: Path) -> None:
    directory = DevnetDir.open(tmp_path / "d")
    devnet = Devnet(options(tmp_path), directory, lambda _: None)
    devnet.rpc_url, devnet.stripe_url = "http://127.0.0.1:8545", "http://127.0.0.1:8420"
    devnet.ai_url = "http://127.0.0.1:8000/v1"
    contract = "0x" + "11" * 20
    devnet.dao = DevnetDao(Deployment(31337, contract, contract, contract, 1), contract)
    seed = DevnetNode("seed", directory.home("seed"), Account.create())
    member = DevnetNode("node-1", directory.home("node-1"), Account.create())
    for node in (seed, member):
        node.home.init()
        devnet._write_config(node, bridge_address=None if node.is_seed else SEED_ADDRESS)

    seed_config = load(seed.home.config_file, profile="seed")
    assert seed_config.bridge.stripe.enabled and seed_config.bridge.ai.enabled
    assert seed_config.bridge.stripe.api_base == devnet.stripe_url
    assert seed_config.bridge.ai.base_url == devnet.ai_url
    assert seed_config.gateway.ui is False  # still a seed
    member_config = load(member.home.config_file)
    assert member_config.bridges.stripe == member_config.bridges.ai == [SEED_ADDRESS]
    for config in (seed_config, member_config):
        assert config.chain.deployed and config.chain.relayer
        assert config.chain.relayer_password_file == str(directory.password_file)
        assert not config.network.mdns
        assert not config.network.default_bootstrap
    directory.close()


def test_render_toml_writes_what_tomllib_reads() -> None:
    import tomllib

    sections: dict[str, dict[str, object]] = {
        "a": {"text": 'quote " and \\ backslash', "on": True, "n": 3, "list": ["x", "y"]},
        "a.b": {"off": False},
    }
    assert tomllib.loads(render_toml(sections)) == {
        "a": {"text": 'quote " and \\ backslash', "on": True, "n": 3, "list": ["x", "y"],
              "b": {"off": False}},
    }  # fmt: skip
    with pytest.raises(TypeError):
        render_toml({"a": {"f": 1.5}})


def test_anvil_is_found_where_a_user_says(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    binary = tmp_path / "anvil"
    binary.write_text("#!/bin/sh\n")
    with pytest.raises(NodeError, match="not an executable"):
        find_anvil(binary)
    binary.chmod(0o755)
    assert find_anvil(binary) == binary
    monkeypatch.setenv("ZION_ANVIL", str(binary))
    assert find_anvil(None) == binary
    monkeypatch.setenv("ZION_ANVIL", str(tmp_path / "missing"))
    with pytest.raises(NodeError, match="missing is not an executable"):
        find_anvil(None)
