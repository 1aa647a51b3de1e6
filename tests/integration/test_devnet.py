"""`zion devnet` end to end: one command brings up anvil with the DAO, a seed and members
(with localstripe and the AI test server behind bridges), everything works together, and
SIGINT stops every process it started.

One devnet serves all the checks, bridges included: each start costs seconds of CPU (three
node processes), and the suite is near its time budget."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.nodes import wait_until
from zion.contracts.client import Chain, Dao, Deployment
from zion.node.devnet_chain import find_anvil
from zion.node.errors import NodeError

#: Three nodes, anvil and two servers on a busy 2-core machine (about 12 s when idle).
UP_TIMEOUT_S = 90.0
#: Nodes give themselves 4 s to stop, the devnet 10 s before it kills.
STOP_TIMEOUT_S = 30.0
GOSSIP_TIMEOUT_S = 30.0
#: The devnet mines a block a second.
BLOCK_TIMEOUT_S = 10.0
CLI_TIMEOUT_S = 60.0
ROOT = Path(__file__).resolve().parents[2]
_LOGIN_URL = re.compile(r"http://127\.0\.0\.1:\d+/login\?token=[\w-]+")


@pytest.fixture(scope="module")
def anvil() -> None:
    try:
        find_anvil(None)
    except NodeError as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))


@dataclass
class RunningDevnet:
    process: subprocess.Popen[bytes]
    directory: Path
    out: Path
    err: Path

    @property
    def state(self) -> dict[str, Any]:
        return dict(json.loads((self.directory / "devnet.json").read_text()))

    def output(self) -> str:
        return self.out.read_text(errors="replace")

    def errors(self) -> str:
        return self.err.read_text(errors="replace")


def zion_devnet(directory: Path, *flags: str) -> list[str]:
    """The README's words: ./dev.sh devnet (set up, then exec `zion devnet`)."""
    return [str(ROOT / "dev.sh"), "devnet", "--dir", str(directory), *flags]


@pytest.fixture
def devnet(tmp_path: Path, anvil: None) -> Iterator[RunningDevnet]:
    directory = tmp_path / "devnet"
    out, err = tmp_path / "devnet.out", tmp_path / "devnet.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            zion_devnet(directory, "--nodes", "3", "--stripe", "--ai"),
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,  # like a terminal's job: our SIGINT is the only one
        )
    running = RunningDevnet(process, directory, out, err)

    def up() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"zion devnet exited ({process.returncode}):\n{running.errors()}")
        try:
            return running.state["state"] == "running"
        except (OSError, ValueError):
            return False

    try:
        wait_until(up, UP_TIMEOUT_S, "the devnet to be up", interval=0.2)
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                _kill_everything(running)


def _kill_everything(running: RunningDevnet) -> None:
    """Only when the devnet itself failed to stop: leave nothing behind on the machine."""
    running.process.kill()
    running.process.wait()
    for child in running.state.get("processes", []):
        for pid in _group_members(child["pgid"]):
            os.kill(pid, signal.SIGKILL)


def _group_members(pgid: int) -> list[int]:
    """Living processes of a process group, from /proc (psutil is no dependency)."""
    members = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if fields and fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def api(node: dict[str, Any]) -> httpx.Client:
    token = (Path(node["home"]) / "api_token").read_text().strip()
    return httpx.Client(
        base_url=node["gateway"], headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


def peers(node: dict[str, Any]) -> set[str]:
    with api(node) as client:
        return {p["peer_id"] for p in client.get("/api/v1/peers").json()["items"]}


def test_devnet_runs_a_network_and_stops_all_of_it(devnet: RunningDevnet) -> None:
    state = devnet.state
    seed, node1, node2 = state["nodes"]
    assert [n["role"] for n in state["nodes"]] == ["seed", "member", "member"]

    # Every node answers its gateway with its own token, and all of them on 127.0.0.1 only.
    for node in state["nodes"]:
        with api(node) as client:
            assert client.get("/api/v1/node").json()["peer_id"] == node["peer_id"]
        assert node["gateway"].startswith("http://127.0.0.1:")
        assert node["multiaddr"].startswith("/ip4/127.0.0.1/tcp/")
        assert node["multiaddr"].endswith(f"/p2p/{node['peer_id']}")
    # The members bootstrapped to the seed (the devnet waits for that before it says it is up).
    assert {node1["peer_id"], node2["peer_id"]} <= peers(seed)
    assert seed["peer_id"] in peers(node1) and seed["peer_id"] in peers(node2)

    # A listing made on one member reaches the other (through the seed, or directly).
    with api(node1) as client:
        created = client.post(
            "/api/v1/listings",
            json={
                "title": "Devnet bike",
                "price": {"amount": 12000, "currency": "EUR"},
                "category": "bikes",
            },
        )
        assert created.status_code == 201, created.text
    with api(node2) as client:
        wait_until(
            lambda: client.get(f"/api/v1/listings/{created.json()['id']}").status_code == 200,
            GOSSIP_TIMEOUT_S,
            "the listing to reach node-2",
        )

    # Every node's wallet holds DAO tokens with their votes delegated, on the chain itself,
    # and each node's [chain] makes the DAO usable from its gateway with that wallet.
    chain = state["chain"]
    deployment = Deployment(
        chain_id=chain["chain_id"],
        token=chain["token"],
        timelock=chain["timelock"],
        governor=chain["governor"],
        block=0,
    )
    dao = Dao(Chain.connect(chain["rpc_url"]), deployment)
    # Blocks come on a clock, so that votes end and events confirm while nobody sends anything.
    block = dao.chain.w3.eth.block_number
    wait_until(lambda: dao.chain.w3.eth.block_number > block, BLOCK_TIMEOUT_S, "a new block")
    for node in state["nodes"]:
        assert dao.balance(node["wallet"]) > 0
        assert dao.token.functions.getVotes(node["wallet"]).call() > 0
        assert dao.chain.w3.eth.get_balance(node["wallet"]) > 0
        with api(node) as client:
            info = client.get("/api/v1/dao").json()
        assert info["wallet"] == node["wallet"]
        assert info["governor"].lower() == chain["governor"].lower()

    # The login URL printed for node-1 logs a browser in: a session cookie, then the UI.
    printed = _LOGIN_URL.findall(devnet.output())
    assert node1["login_url"] in printed and node2["login_url"] in printed
    assert "Press Ctrl-C to stop" in devnet.output()
    with httpx.Client(follow_redirects=True, timeout=10) as browser:
        page = browser.get(node1["login_url"])
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert any(name.startswith("zion_session_") for name in browser.cookies)
        assert browser.get(f"{node1['gateway']}/api/v1/node").status_code == 200

    # Both bridges run on the seed, and a member sees them.
    with api(node1) as client:

        def bridged() -> bool:
            items = client.get("/api/v1/bridges").json()["items"]
            services = {
                offer["service"]
                for bridge in items
                if bridge["peer_id"] == seed["peer_id"]
                for offer in bridge["offers"]
            }
            return services == {"stripe", "ai"}

        wait_until(bridged, GOSSIP_TIMEOUT_S, "the seed's bridges to reach node-1")
    assert set(state["bridges"]) == {"stripe", "ai"}

    # SIGINT (Ctrl-C) stops everything, cleanly.
    devnet.process.send_signal(signal.SIGINT)
    assert devnet.process.wait(timeout=STOP_TIMEOUT_S) == 0, devnet.errors()
    stopped = devnet.state
    assert stopped["state"] == "stopped"
    names = {child["name"] for child in stopped["processes"]}
    assert names == {"anvil", "localstripe", "ai-server", "seed", "node-1", "node-2"}
    for child in stopped["processes"]:
        assert _group_members(child["pgid"]) == [], f"{child['name']} left processes behind"
    assert "killed" not in devnet.errors()


def test_devnet_refuses_a_directory_it_did_not_make(tmp_path: Path) -> None:
    """The command itself, as a user runs it: one line naming the problem, nothing started,
    nothing written. (Other bad input: tests/unit/node/test_devnet.py.)"""
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    result = subprocess.run(
        zion_devnet(foreign), capture_output=True, text=True, timeout=CLI_TIMEOUT_S
    )
    assert result.returncode == 1
    assert result.stderr.startswith("zion: --dir ")
    assert "not a devnet's directory" in result.stderr
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]
