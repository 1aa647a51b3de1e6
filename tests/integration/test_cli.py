"""The `zion` command end to end: init, config errors, signals, and every client command."""

from __future__ import annotations

import json
import signal
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.integration.nodes import NodeProcess, wait_until

Spawn = Callable[..., NodeProcess]


def zion(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "zion", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_init_creates_a_private_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    out = zion(home, "init").stdout
    assert "peer ID: 12D3KooW" in out
    for name in ("identity.key", "api_token"):
        assert stat.S_IMODE((home / name).stat().st_mode) == 0o600
    assert (home / "config.toml").read_text().startswith("# Zion node configuration")
    assert len((home / "identity.key").read_bytes()) == 32
    # Idempotent: the identity survives a second init.
    key = (home / "identity.key").read_bytes()
    assert "already set up" in zion(home, "init").stdout
    assert (home / "identity.key").read_bytes() == key


def test_home_from_environment(tmp_path: Path) -> None:
    home = tmp_path / "env-home"
    result = subprocess.run(
        [sys.executable, "-m", "zion", "init"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"ZION_HOME": str(home), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert (home / "identity.key").exists()


def test_bad_config_is_one_line_naming_the_key(tmp_path: Path) -> None:
    home = tmp_path / "home"
    zion(home, "init")
    config = home / "config.toml"
    for text, key in [
        ("[gossip]\nbatch_window_ms = 'soon'\n", "gossip.batch_window_ms"),
        ("[network]\ncolour = 'red'\n", "network.colour"),
        ("[gateway]\nlisten = 'everywhere'\n", "gateway.listen"),
    ]:
        config.write_text(text)
        result = zion(home, "run", check=False)
        assert result.returncode == 1
        message = result.stderr.strip()
        assert "\n" not in message and key in message, message


def test_world_readable_key_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    zion(home, "init")
    (home / "identity.key").chmod(0o644)
    result = zion(home, "run", check=False)
    assert result.returncode == 1
    assert "chmod 600" in result.stderr


def test_client_commands_without_a_node_explain(tmp_path: Path) -> None:
    result = zion(tmp_path / "nothing", "status", check=False)
    assert result.returncode == 1
    assert "no node is running" in result.stderr


def test_run_initialises_a_missing_home_and_stops_on_sigint(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "fresh", "fresh")
    node.start()
    assert (node.home / "identity.key").exists()
    assert node.process is not None
    node.process.send_signal(signal.SIGINT)
    assert node.process.wait(timeout=5) == 0
    assert not (node.home / "gateway.url").exists()


def test_every_client_command(spawn: Spawn) -> None:
    a = spawn("a")
    b = spawn("b")
    home = a.home
    assert zion(home, "id").stdout.startswith(a.peer_id)
    assert "no peers connected" in zion(home, "peers").stdout
    assert b.peer_id in zion(home, "connect", b.address).stdout
    assert b.peer_id in zion(home, "peers").stdout
    status = json.loads(zion(home, "status", "--json").stdout)
    assert status["peers"] == 1

    listing_id = zion(
        home,
        "listings",
        "add",
        "--title",
        "Green kayak",
        "--price",
        "349.90",
        "--currency",
        "eur",
        "--category",
        "sports",
        "--tag",
        "boat",
        "--description",
        "Two seats, paddles included",
    ).stdout.strip()
    shown = zion(home, "listings", "show", listing_id).stdout
    assert "Green kayak" in shown and "349.90 EUR" in shown and "paddles" in shown
    assert listing_id in zion(home, "listings", "ls").stdout
    assert listing_id in zion(home, "listings", "search", "kayak").stdout
    assert "no listings" in zion(home, "listings", "search", "submarine").stdout
    wait_until(lambda: b.get_listing(listing_id), 10, "listing on b")

    bad_price = zion(
        home, "listings", "add", "--title", "x", "--price", "1.234", "--category", "c", check=False
    )
    assert bad_price.returncode != 0 and "decimals" in bad_price.stderr

    assert "deleted" in zion(home, "listings", "rm", listing_id).stdout
    missing = zion(home, "listings", "show", listing_id, check=False)
    assert missing.returncode == 1 and "404" in missing.stderr
    wait_until(lambda: b.get_listing(listing_id) is None, 10, "delete on b")

    message_id = zion(home, "chat", "post", "general", "hello there").stdout.strip()
    assert message_id.startswith("bafyrei")
    assert "hello there" in zion(home, "chat", "read", "general").stdout
    wait_until(lambda: message_id in b.message_ids("general"), 10, "message on b")


def test_mdns_finds_a_peer_on_the_lan(tmp_path: Path) -> None:
    a = NodeProcess(tmp_path / "a", "a").start(extra=["--mdns"])
    b = NodeProcess(tmp_path / "b", "b").start(extra=["--mdns"])
    try:
        wait_until(lambda: a.connected_to(b.peer_id), 30, "mDNS discovery")
    finally:
        a.kill()
        b.kill()


def test_ports_in_use_are_clear_errors(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for args, words in [
            (["--gateway", f"127.0.0.1:{port}", "--listen", "/ip4/127.0.0.1/tcp/0"], "gateway"),
            (["--gateway", "127.0.0.1:0", "--listen", f"/ip4/127.0.0.1/tcp/{port}"], "listen"),
        ]:
            result = zion(tmp_path / "home", "run", "--no-mdns", *args, check=False)
            assert result.returncode == 1
            last = result.stderr.strip().splitlines()[-1]
            assert last.startswith("zion: cannot") and words in last and str(port) in last, last


def test_sigterm_with_a_live_event_stream_stops_within_5_seconds(tmp_path: Path) -> None:
    import threading

    import httpx

    node = NodeProcess(tmp_path / "n", "n").start()
    opened = threading.Event()

    def listen() -> None:
        try:
            with httpx.stream("GET", f"{node.base_url}/api/v1/events", timeout=30) as response:
                for _ in response.iter_lines():
                    opened.set()
        except httpx.HTTPError:
            pass  # the node went away: expected

    reader = threading.Thread(target=listen, daemon=True)
    reader.start()
    assert opened.wait(10), "event stream did not open"
    assert node.stop() == 0  # stop() waits at most 5 s
    reader.join(timeout=5)
    assert not reader.is_alive()


def test_wallet_commands(tmp_path: Path) -> None:
    home = tmp_path / "home"
    zion(home, "init")
    password_file = tmp_path / "password"
    password_file.write_text("a long enough password\n")
    address = zion(home, "wallet", "new", "--password-file", str(password_file)).stdout.strip()
    assert address.startswith("0x") and len(address) == 42
    assert zion(home, "wallet", "address").stdout.strip() == address
    assert zion(home, "wallet", "list").stdout.strip() == f"{address}  (default)"
    key_file = tmp_path / "key.hex"
    key_file.write_text("0x" + "11" * 32)
    result = subprocess.run(
        [sys.executable, "-m", "zion", "--home", str(home), "wallet", "import", str(key_file)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "ZION_WALLET_PASSWORD": "from the environment"},
    )
    assert result.returncode == 0, result.stderr
    imported = result.stdout.strip()
    assert len(zion(home, "wallet", "list").stdout.splitlines()) == 2
    assert "from the environment" not in (home / "wallets" / f"{imported}.json").read_text()
    no_password = subprocess.run(
        [sys.executable, "-m", "zion", "--home", str(home), "wallet", "new"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert no_password.returncode != 0 and "ZION_WALLET_PASSWORD" in no_password.stderr


def test_wallet_link_publishes_a_verified_profile(spawn: Spawn, tmp_path: Path) -> None:
    node = spawn("a")
    password_file = tmp_path / "password"
    password_file.write_text("a long enough password")
    address = zion(node.home, "wallet", "new", "--password-file", str(password_file)).stdout.strip()
    out = zion(node.home, "wallet", "link", "--name", "Ada", "--password-file", str(password_file))
    assert address in out.stdout
    profile = node.api.get(f"/api/v1/profiles/{node.peer_id}").json()
    assert profile["name"] == "Ada" and profile["wallet"].lower() == address.lower()


def test_a_relayer_without_a_wallet_password_does_not_start(tmp_path: Path) -> None:
    from zion.node.config import update_file

    home = tmp_path / "home"
    zion(home, "init")
    address = "0x" + "12" * 20
    update_file(
        home / "config.toml",
        "chain",
        {
            "rpc_url": "http://127.0.0.1:9",
            "token": address,
            "governor": address,
            "timelock": address,
            "relayer": True,
        },
    )
    result = subprocess.run(
        [sys.executable, "-m", "zion", "--home", str(home), "run", "--gateway", "127.0.0.1:0"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode != 0
    assert "ZION_WALLET_PASSWORD" in result.stderr
