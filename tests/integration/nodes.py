"""Real Zion nodes as separate processes on 127.0.0.1, driven through their gateways."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx

START_TIMEOUT_S = 60.0
LOOPBACK_LISTEN = "/ip4/127.0.0.1/tcp/0"
LOOPBACK_GATEWAY = "127.0.0.1:0"
T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            result = condition()
            if result:
                return result
        except (httpx.HTTPError, OSError) as exc:
            last_error = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} ({last_error})")
        time.sleep(interval)


class NodeProcess:
    def __init__(
        self,
        home: Path,
        name: str,
        *,
        prefix: list[str] | None = None,
        listen: str = LOOPBACK_LISTEN,
        gateway: str = LOOPBACK_GATEWAY,
    ) -> None:
        """``prefix``: a command the node runs under (``["ip", "netns", "exec", NS]``);
        ``listen`` and ``gateway``: its libp2p and HTTP addresses, on every start."""
        self.home = home
        self.name = name
        self.prefix = list(prefix or [])
        self.listen = listen
        self.gateway = gateway
        self.process: subprocess.Popen[bytes] | None = None
        self.base_url = ""
        self.client: httpx.Client | None = None

    @property
    def token(self) -> str:
        """The node's API token (its home's ``api_token``, written by the first start)."""
        return (self.home / "api_token").read_text().strip()

    @property
    def log_file(self) -> Path:
        return self.home.parent / f"{self.name}.log"

    def start(
        self,
        *,
        bootstrap: list[str] | None = None,
        extra: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> NodeProcess:
        """``env``: added to the node's environment (secrets a bridge reads from it)."""
        (self.home / "gateway.url").unlink(missing_ok=True)
        args = [
            *self.prefix,
            sys.executable,
            "-m",
            "zion",
            "--home",
            str(self.home),
            "run",
            "--listen",
            self.listen,
            "--gateway",
            self.gateway,
            "--no-mdns",
            # Test networks are closed: never the public seeds of configs/bootstrap.toml.
            "--no-default-bootstrap",
            "--log-level",
            "info",
        ]
        for address in bootstrap or []:
            args += ["--bootstrap", address]
        args += extra or []
        log = open(self.log_file, "ab")  # noqa: SIM115 - owned by the process until it ends
        self.process = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONUNBUFFERED="1", **(env or {})),
        )
        log.close()
        url_file = self.home / "gateway.url"

        def ready() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited at start:\n{self.log_tail()}")
            if not url_file.exists():
                return False
            self.base_url = url_file.read_text().strip()
            self.client = httpx.Client(
                base_url=self.base_url,
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=30,
            )
            return self.client.get("/api/v1/node").status_code == 200

        wait_until(ready, START_TIMEOUT_S, f"{self.name} to start")
        return self

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    @property
    def api(self) -> httpx.Client:
        assert self.client is not None, f"{self.name} is not running"
        return self.client

    @property
    def address(self) -> str:
        addrs = self.api.get("/api/v1/node").json()["addrs"]
        return str(addrs[0])

    @property
    def peer_id(self) -> str:
        return str(self.api.get("/api/v1/node").json()["peer_id"])

    def status(self) -> dict[str, Any]:
        return dict(self.api.get("/api/v1/status").json())

    def stop(self) -> int:
        """SIGTERM, and the node must be gone within 5 s."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=5)
        self._closed()
        return code

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)
        self._closed()

    def _closed(self) -> None:
        if self.client is not None:
            self.client.close()
        self.client = None

    def create_listing(self, title: str, **fields: Any) -> dict[str, Any]:
        body = {
            "title": title,
            "price": {"amount": 1000, "currency": "EUR"},
            "category": "test",
            **fields,
        }
        response = self.api.post("/api/v1/listings", json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def listing_ids(self) -> set[str]:
        ids: set[str] = set()
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 200}
            if cursor:
                params["cursor"] = cursor
            page = self.api.get("/api/v1/listings", params=params).json()
            ids |= {item["id"] for item in page["items"]}
            cursor = page["next"]
            if not cursor:
                return ids

    def get_listing(self, listing_id: str) -> dict[str, Any] | None:
        response = self.api.get(f"/api/v1/listings/{listing_id}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return dict(response.json())

    def message_ids(self, channel: str) -> set[str]:
        ids: set[str] = set()
        params: dict[str, Any] = {"limit": 200}
        while True:
            page = self.api.get(f"/api/v1/channels/{channel}/messages", params=params).json()
            ids |= {item["id"] for item in page["items"]}
            if not page["next"]:
                return ids
            params["cursor"] = page["next"]

    def connected_to(self, peer_id: str) -> bool:
        return any(p["peer_id"] == peer_id for p in self.api.get("/api/v1/peers").json()["items"])


#: ``spawn(name, bootstrap=None, extra=None)``: a started node, once its API answers.
Spawn = Callable[..., NodeProcess]


@contextmanager
def spawned_nodes(root: Path) -> Iterator[Spawn]:
    """Start named nodes with homes under ``root``; every one still running is killed on exit.

    The ``spawn`` fixtures of tests/integration and tests/e2e are this, over ``tmp_path``.
    """
    nodes: list[NodeProcess] = []

    def start(
        name: str,
        bootstrap: list[str] | None = None,
        extra: list[str] | None = None,
        *,
        config: str = "",
        env: dict[str, str] | None = None,
        prefix: list[str] | None = None,
        listen: str = LOOPBACK_LISTEN,
        gateway: str = LOOPBACK_GATEWAY,
    ) -> NodeProcess:
        """``config``: TOML written to the new node's config.toml (the defaults fill the rest);
        ``prefix``, ``listen``, ``gateway``: as NodeProcess takes them."""
        node = NodeProcess(root / name, name, prefix=prefix, listen=listen, gateway=gateway)
        nodes.append(node)
        if config:
            node.home.mkdir(mode=0o700, parents=True, exist_ok=True)
            (node.home / "config.toml").write_text(config, "utf-8")
        return node.start(bootstrap=bootstrap, extra=extra, env=env)

    try:
        yield start
    finally:
        for node in nodes:
            if node.process is not None and node.process.poll() is None:
                node.kill()
