"""`zion doctor`: each check finds its problem and says what to do."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from zion.node import config as config_module
from zion.node import doctor
from zion.node.cli import cli
from zion.node.home import NodeHome


@pytest.fixture
def home(tmp_path: Path) -> NodeHome:
    made = NodeHome(tmp_path / "home")
    made.init()
    return made


@pytest.fixture
def listening() -> Iterator[int]:
    """A port something listens on."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield int(server.getsockname()[1])


def load(**sections: dict[str, object]) -> config_module.Config:
    return config_module.load(None, dict(sections))


def statuses(findings: list[doctor.Finding]) -> list[str]:
    return [finding.status for finding in findings]


def test_a_fresh_home_is_healthy_and_a_readable_token_is_not(home: NodeHome) -> None:
    assert statuses(doctor.check_home(home)) == ["ok"]
    home.token_file.chmod(0o644)
    (finding,) = doctor.check_home(home)
    assert finding.status == "fail" and finding.fix == f"chmod 600 {home.token_file}"


def test_a_taken_port_without_a_running_node_fails(home: NodeHome, listening: int) -> None:
    taken = load(gateway={"listen": f"127.0.0.1:{listening}"})
    (finding,) = doctor.check_gateway(home, taken)
    assert finding.status == "fail" and "taken" in finding.detail
    clashing = load(network={"listen": [f"/ip4/127.0.0.1/tcp/{listening}"]})
    (finding,) = doctor.check_listen(home, clashing)
    assert finding.status == "fail" and "[network] listen" in finding.fix
    free = load(gateway={"listen": "127.0.0.1:0"})
    assert statuses(doctor.check_gateway(home, free)) == ["ok"]


def test_a_gateway_file_that_nothing_answers_is_a_stale_node(home: NodeHome) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    home.gateway_file.write_text(f"http://127.0.0.1:{dead}\n")
    (finding,) = doctor.check_gateway(home, load())
    assert finding.status == "fail" and "restart" in finding.fix


def test_bootstrap_peers_are_tried_over_tcp(listening: int) -> None:
    peer = "12D3KooWLqpQj53UiZWd7SxSN31Gv6AmNHy33xnCcYz8K3J7z7pq"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    down = load(network={"bootstrap": [f"/ip4/127.0.0.1/tcp/{closed}/p2p/{peer}"]})
    assert statuses(doctor.check_bootstrap(down)) == ["fail"]
    up = load(
        network={
            "bootstrap": [
                f"/ip4/127.0.0.1/tcp/{closed}/p2p/{peer}",
                f"/ip4/127.0.0.1/tcp/{listening}/p2p/{peer}",
            ]
        }
    )
    (finding,) = doctor.check_bootstrap(up)
    assert finding.status == "ok" and "1 of 2" in finding.detail
    assert statuses(doctor.check_bootstrap(load())) == ["warn"]


def test_clock_skew_against_a_date_header() -> None:
    now = 1_800_000_000.0
    header = "Fri, 15 Jan 2027 08:00:00 GMT"  # = 1_800_000_000
    assert doctor._clock(header, now + 0.4, "rpc").status == "ok"
    assert doctor._clock(header, now + 120, "rpc").status == "warn"
    late = doctor._clock(header, now - 600, "rpc")
    assert late.status == "fail" and "behind" in late.detail and "NTP" not in late.detail
    assert doctor._clock(None, now, "rpc").status == "warn"


def test_disk_space_against_the_storage_limit(home: NodeHome) -> None:
    (finding,) = doctor.check_disk(home, load(ipfs={"max_storage_bytes": 1 << 50}))
    assert finding.status == "warn" and "max_storage_bytes" in finding.detail


def test_bridge_secrets_must_be_there_and_private(
    home: NodeHome, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ZION_AI_API_KEY", raising=False)
    (missing,) = doctor.check_bridge_secrets(load(bridge={"ai": {"enabled": True}}))
    assert missing.status == "fail" and "ZION_AI_API_KEY" in missing.detail
    key = tmp_path / "ai.key"
    key.write_text("sk-test")
    key.chmod(0o644)
    shared = load(bridge={"ai": {"enabled": True, "api_key_file": str(key)}})
    (finding,) = doctor.check_bridge_secrets(shared)
    assert finding.status == "fail" and "chmod 600" in finding.fix
    key.chmod(0o600)
    (finding,) = doctor.check_bridge_secrets(shared)
    assert finding.status == "ok" and "sk-test" not in finding.detail


def node_status(peers: int, reachability: str, relayed: int = 0) -> dict[str, object]:
    """The parts of GET /api/v1/status the network check reads."""
    return {
        "peers": peers,
        "discovery": {"min_peers": 8},
        "reachability": reachability,
        "relayed_addrs": [
            f"/ip4/192.0.2.1/tcp/4001/p2p/relay/p2p-circuit/{n}" for n in range(relayed)
        ],
    }


def test_the_running_node_is_judged_by_its_peers_and_its_autonat_verdict() -> None:
    alone, private = doctor.judge_network(node_status(0, "private"))
    assert alone.status == "fail" and "zion connect" in alone.fix
    assert private.status == "warn" and "none yet" in private.detail
    assert "[network] announce" in private.fix
    few, relayed = doctor.judge_network(node_status(3, "private", relayed=2))
    assert few.status == "warn" and "min_peers (8)" in few.detail
    assert relayed.status == "warn" and "2 relayed addresses" in relayed.detail
    assert statuses(doctor.judge_network(node_status(8, "public"))) == ["ok", "ok"]
    assert statuses(doctor.judge_network(node_status(9, "unknown"))) == ["ok", "ok"]
    # The first seed of a new network has no one to connect to yet.
    assert statuses(doctor.judge_network(node_status(0, "unknown"), first_of_network=True)) == [
        "warn",
        "ok",
    ]
    # An older node's status, without these counters.
    assert statuses(doctor.judge_network({"peers": 3})) == ["warn"]


def test_a_node_that_is_not_running_has_no_network_findings(home: NodeHome) -> None:
    assert doctor.check_network(home, load()) == []


def test_the_command_exits_1_when_a_check_fails(home: NodeHome) -> None:
    # Ports 0: the default ports may be in use on the machine running the tests.
    home.config_file.write_text(
        '[gateway]\nlisten = "127.0.0.1:0"\n[network]\nlisten = ["/ip4/127.0.0.1/tcp/0"]\n'
    )
    runner = CliRunner()
    healthy = runner.invoke(cli, ["--home", str(home.path), "doctor"])
    assert healthy.exit_code == 0, healthy.output
    assert "0 failed" in healthy.output
    home.key_file.chmod(0o644)
    sick = runner.invoke(cli, ["--home", str(home.path), "doctor"])
    assert sick.exit_code == 1
    assert "FAIL  home" in sick.output and f"fix: chmod 600 {home.key_file}" in sick.output
