"""`zion devnet`: a whole Zion network on 127.0.0.1, started by one command and stopped by Ctrl-C.

anvil (the chain) with the DAO deployed, a seed node and members bootstrapped to it, each
with a funded wallet holding delegated DAO tokens, and optionally localstripe and the AI test
server behind bridges on the seed. Every one of them is a child process (devnet_procs), with
its home and log in the devnet's directory (devnet_dir).

Why trio rather than plain subprocess calls: one nursery holds a watcher per child, the signal
receiver and the start-up itself, so whichever comes first (Ctrl-C or SIGTERM, a child that
dies, a start-up step that fails) cancels the rest at a checkpoint, never halfway through
starting a process; the stop then runs, shielded, in one place, whatever happened.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

import httpx
import trio
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

from zion.devtools.listening import LISTENING_LINE
from zion.node import devnet_procs
from zion.node.devnet_chain import (
    ETH,
    SETTINGS,
    TREASURY_ETH,
    WALLET_ETH,
    WALLET_TOKENS,
    DevnetDao,
    deploy_dao,
    node_wallet,
)
from zion.node.devnet_dir import DevnetDir
from zion.node.devnet_procs import Child, spawn, wait_for_line
from zion.node.devnet_settings import MAX_NODES
from zion.node.errors import NodeError, first_of
from zion.node.home import NodeHome, write_secret
from zion.node.wallet import MIN_PASSWORD_CHARS
from zion.protocols.identity import peer_id_of
from zion.protocols.records import wallet_link_message

#: Devnet only: localstripe takes any key, and the AI test server any key it is given.
WEBHOOK_SECRET: Final = "whsec_zion_devnet_0123456789abcdef"  # noqa: S105
AI_KEY: Final = "sk-zion-devnet-0123456789abcdef"
SEED: Final = "seed"
MEMBER_PREFIX: Final = "node-"
ANVIL_START_TIMEOUT_S: Final = 30.0
SERVER_START_TIMEOUT_S: Final = 30.0
#: A node's start takes a few seconds (imports, wallet unlock); on a busy 2-core machine, more.
NODE_START_TIMEOUT_S: Final = 60.0
#: Members dial the seed as soon as they start; this covers retries on a busy machine.
CONNECT_TIMEOUT_S: Final = 30.0
HTTP_TIMEOUT_S: Final = 10.0
POLL_INTERVAL_S: Final = 0.1
STRIPE_EVENTS: Final = ("payment_intent.succeeded", "charge.refunded")
LOCALHOST: Final = "127.0.0.1"
_ANVIL_LISTENING: Final = re.compile(rf"Listening on {re.escape(LOCALHOST)}:(\d+)")

T = TypeVar("T")


@dataclass(frozen=True)
class DevnetOptions:
    nodes: int
    directory: Path | None
    anvil: Path
    stripe: bool
    ai: bool
    password: str
    block_time_s: int
    rpc_port: int

    def __post_init__(self) -> None:
        if not 2 <= self.nodes <= MAX_NODES:
            raise NodeError(f"--nodes: from 2 (a seed and a member) to {MAX_NODES}")
        if len(self.password) < MIN_PASSWORD_CHARS:
            raise NodeError(f"--wallet-password: at least {MIN_PASSWORD_CHARS} characters")


@dataclass
class DevnetNode:
    name: str
    home: NodeHome
    wallet: LocalAccount
    child: Child | None = None
    peer_id: str = ""
    gateway: str = ""
    multiaddr: str = ""
    metrics: str = ""

    @property
    def is_seed(self) -> bool:
        return self.name == SEED

    @property
    def login_url(self) -> str | None:
        """None for the seed: the seed profile serves no web UI."""
        if self.is_seed or not self.gateway:
            return None
        return f"{self.gateway}/login?token={self.home.load_token()}"

    def client(self) -> httpx.AsyncClient:
        token = self.home.load_token()
        return httpx.AsyncClient(
            base_url=self.gateway,
            headers={"Authorization": f"Bearer {token}"},
            timeout=HTTP_TIMEOUT_S,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": "seed" if self.is_seed else "member",
            "home": str(self.home.path),
            "peer_id": self.peer_id,
            "gateway": self.gateway,
            "login_url": self.login_url,
            "multiaddr": self.multiaddr,
            "metrics": self.metrics or None,
            "wallet": self.wallet.address,
            "pid": self.child.pid if self.child else None,
            "log": str(self.child.log) if self.child else None,
        }


@dataclass
class Devnet:
    options: DevnetOptions
    dir: DevnetDir
    progress: Callable[[str], None]
    children: list[Child] = field(default_factory=list)
    nodes: list[DevnetNode] = field(default_factory=list)
    rpc_url: str = ""
    dao: DevnetDao | None = None
    stripe_url: str = ""
    ai_url: str = ""
    #: Why the devnet stopped on its own (a child died), if it did.
    failure: str | None = None
    _env: dict[str, str] = field(default_factory=lambda: {**os.environ, "PYTHONUNBUFFERED": "1"})

    # --- start ---------------------------------------------------------------------------

    async def start(self, nursery: trio.Nursery) -> None:
        """Everything, in dependency order; children are watched from ``nursery``."""
        options = self.options
        names = [SEED, *(f"{MEMBER_PREFIX}{i}" for i in range(1, options.nodes))]
        for name in names:
            self.dir.home(name).init()
        write_secret(self.dir.password_file, options.password.encode("utf-8"))
        servers = ["anvil"] + ["localstripe"] * options.stripe + ["the AI test server"] * options.ai
        self.progress(f"starting {', '.join(servers)}; making {len(names)} wallets ...")
        wallets: dict[str, LocalAccount] = {}
        async with trio.open_nursery() as setup:
            setup.start_soon(self._start_anvil, nursery)
            setup.start_soon(self._make_wallets, names, wallets)
            if options.stripe:
                setup.start_soon(self._start_localstripe, nursery)
            if options.ai:
                setup.start_soon(self._start_ai_server, nursery)
        self.nodes = [DevnetNode(name, self.dir.home(name), wallets[name]) for name in names]
        self.progress(f"chain at {self.rpc_url}; deploying the DAO and funding the wallets ...")
        members = [node.wallet for node in self.nodes]
        self.dao = await trio.to_thread.run_sync(
            deploy_dao, self.rpc_url, members, options.block_time_s, abandon_on_cancel=True
        )
        seed, *others = self.nodes
        # The seed's address is fixed before it starts, so that the members can start with
        # it at the same time, instead of after it (a node's start is mostly CPU: imports).
        seed_address = f"/ip4/{LOCALHOST}/tcp/{_free_port()}/p2p/{peer_id_of(seed.home.load_key())}"
        bridged = seed_address if (options.stripe or options.ai) else None
        for node in self.nodes:
            self._write_config(node, bridge_address=None if node.is_seed else bridged)
        self.progress(f"starting the seed and {len(others)} member nodes ...")
        async with trio.open_nursery() as starting:
            starting.start_soon(self._start_node, nursery, seed, seed_address)
            for node in others:
                starting.start_soon(self._start_node, nursery, node, seed_address)
        if options.stripe:
            await self._register_webhook(seed)
        self.progress("linking wallets to nodes and connecting the nodes ...")
        async with trio.open_nursery() as linking:
            for node in self.nodes:
                linking.start_soon(self._link_wallet, node)
                if not node.is_seed:
                    linking.start_soon(self._connect_to_seed, node)
        await _until(self._all_connected, CONNECT_TIMEOUT_S, "the members to connect to the seed")

    async def _spawn(
        self, nursery: trio.Nursery, name: str, args: list[str], env: dict[str, str] | None = None
    ) -> Child:
        child = await spawn(name, args, self.dir.log(name), env or self._env)
        self.children.append(child)
        nursery.start_soon(self._watch, child, nursery.cancel_scope)
        self.save("starting")  # so that a later run finds this child if we are killed
        return child

    async def _watch(self, child: Child, scope: trio.CancelScope) -> None:
        code = await child.process.wait()
        if not child.stopping and self.failure is None:
            how = f"was killed by {_signal_name(-code)}" if code < 0 else f"exited ({code})"
            self.failure = (
                f"{child.name} {how} unexpectedly; its log ({child.log}) ends:\n{child.log_tail()}"
            )
            scope.cancel()

    async def _start_anvil(self, nursery: trio.Nursery) -> None:
        port = str(self.options.rpc_port)
        args = [str(self.options.anvil), "--host", LOCALHOST, "--port", port]
        child = await self._spawn(nursery, "anvil", args)
        match = await wait_for_line(child, _ANVIL_LISTENING, ANVIL_START_TIMEOUT_S)
        self.rpc_url = f"http://{LOCALHOST}:{match[1]}"

    async def _start_server(self, nursery: trio.Nursery, name: str, args: list[str]) -> str:
        child = await self._spawn(nursery, name, [sys.executable, "-m", *args])
        match = await wait_for_line(child, LISTENING_LINE, SERVER_START_TIMEOUT_S)
        return f"http://{LOCALHOST}:{match[1]}"

    async def _start_localstripe(self, nursery: trio.Nursery) -> None:
        args = ["zion.devtools.localstripe", "--port", "0"]
        self.stripe_url = await self._start_server(nursery, "localstripe", args)

    async def _start_ai_server(self, nursery: trio.Nursery) -> None:
        args = ["zion.devtools.ai_server", "--port", "0", "--key", AI_KEY]
        self.ai_url = await self._start_server(nursery, "ai-server", args) + "/v1"

    async def _make_wallets(self, names: list[str], out: dict[str, LocalAccount]) -> None:
        # Keystores are scrypt: CPU-bound, so in parallel on every core.
        limiter = trio.CapacityLimiter(os.cpu_count() or 1)

        async def one(name: str) -> None:
            home, password = self.dir.home(name), self.options.password
            out[name] = await trio.to_thread.run_sync(
                node_wallet, home, password, limiter=limiter, abandon_on_cancel=True
            )

        async with trio.open_nursery() as nursery:
            for name in names:
                nursery.start_soon(one, name)

    def _write_config(self, node: DevnetNode, bridge_address: str | None) -> None:
        """The node's whole config.toml, written anew on every run (the chain, the seed's
        address and the bridges' ports change every run)."""
        assert self.dao is not None
        deployment = self.dao.deployment
        sections: dict[str, dict[str, object]] = {
            # 127.0.0.1 only: never the public network's seeds.
            "network": {"mdns": False, "default_bootstrap": False},
            "chain": {
                "rpc_url": self.rpc_url,
                "token": deployment.token,
                "governor": deployment.governor,
                "timelock": deployment.timelock,
                # Every node sends from its own wallet: votes, proposals, relayed ballots.
                "relayer": True,
                "relayer_password_file": str(self.dir.password_file),
            },
        }
        if node.is_seed:
            sections |= self._bridge_sections()
        elif bridge_address is not None:
            # Named, not only announced: buyers pay, and recommendations ask, only such ones.
            sections["bridges"] = {
                key: [bridge_address]
                for key, on in (("stripe", self.options.stripe), ("ai", self.options.ai))
                if on
            }
        header = (
            "# Written by `zion devnet` at every start: changes here are lost. Settings not\n"
            "# here come from the defaults (configs/default.toml) and the node's profile.\n\n"
        )
        node.home.config_file.write_text(header + render_toml(sections), "utf-8")

    def _bridge_sections(self) -> dict[str, dict[str, object]]:
        sections: dict[str, dict[str, object]] = {}
        if self.options.stripe or self.options.ai:
            sections["bridge"] = {"name": "Devnet bridge"}
        if self.options.stripe:
            from zion.devtools.localstripe import PUBLISHABLE_KEY

            sections["bridge.stripe"] = {
                "enabled": True,
                "api_base": self.stripe_url,
                "publishable_key": PUBLISHABLE_KEY,
                "terms": "Devnet: localstripe, no money moves.",
            }
        if self.options.ai:
            sections["bridge.ai"] = {
                "enabled": True,
                "base_url": self.ai_url,
                "model": "test-chat",
                "embedding_model": "test-embed",
                "terms": "Devnet: canned answers from a test server.",
            }
        return sections

    def _node_env(self, node: DevnetNode) -> dict[str, str]:
        if not node.is_seed:
            return self._env
        from zion.devtools.localstripe import SECRET_KEY

        # Bridges read secrets from the environment only (never from config.toml).
        secrets = {
            "ZION_STRIPE_SECRET_KEY": SECRET_KEY,
            "ZION_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "ZION_AI_API_KEY": AI_KEY,
        }
        return {**self._env, **secrets}

    async def _start_node(self, nursery: trio.Nursery, node: DevnetNode, seed_address: str) -> None:
        home = node.home
        # Left behind by a node that was killed: it would point at a gateway that is gone.
        home.gateway_file.unlink(missing_ok=True)
        home.metrics_file.unlink(missing_ok=True)
        args = [sys.executable, "-m", "zion", "--home", str(home.path), "run"]
        args += ["--gateway", f"{LOCALHOST}:0", "--no-mdns", "--no-default-bootstrap"]
        if node.is_seed:
            listen = seed_address.partition("/p2p/")[0]
            # Port 0: two devnets, or a devnet and a real seed, must not fight over 9464.
            args += ["--listen", listen, "--profile", "seed", "--metrics", f"{LOCALHOST}:0"]
        else:
            args += ["--listen", f"/ip4/{LOCALHOST}/tcp/0", "--bootstrap", seed_address]
        node.child = await self._spawn(nursery, node.name, args, self._node_env(node))
        node.gateway = await _until(
            lambda: _file_ready(home.gateway_file),
            NODE_START_TIMEOUT_S,
            f"{node.name} to start (its log: {node.child.log})",
        )
        if node.is_seed:
            node.metrics = await _until(
                lambda: _file_ready(home.metrics_file), NODE_START_TIMEOUT_S, "the seed's metrics"
            )
        async with node.client() as client:
            info = (await client.get("/api/v1/node")).raise_for_status().json()
        node.peer_id = info["peer_id"]
        loopback = [a for a in info["addrs"] if a.startswith(f"/ip4/{LOCALHOST}/tcp/")]
        if not loopback:
            raise NodeError(f"{node.name} listens on no 127.0.0.1 address: {info['addrs']}")
        node.multiaddr = loopback[0]

    async def _register_webhook(self, seed: DevnetNode) -> None:
        from zion.devtools.localstripe import register_webhook

        url = f"{seed.gateway}/bridge/stripe/webhook"
        events = list(STRIPE_EVENTS)
        await trio.to_thread.run_sync(
            register_webhook, self.stripe_url, url, WEBHOOK_SECRET, events, abandon_on_cancel=True
        )

    async def _link_wallet(self, node: DevnetNode) -> None:
        """Publish the node's profile with its wallet, signed by the wallet: bridges for
        token holders and other members see which wallet is whose."""
        message = encode_defunct(text=wallet_link_message(node.peer_id))
        signature = bytes(node.wallet.sign_message(message).signature)
        body = {
            "name": node.name,
            "wallet": node.wallet.address,
            "wallet_sig": "0x" + signature.hex(),
        }
        async with node.client() as client:
            (await client.put("/api/v1/profile", json=body)).raise_for_status()

    async def _connect_to_seed(self, node: DevnetNode) -> None:
        """A member that started before the seed listened retries by itself, but only every
        few seconds: dial now instead."""
        seed = self.nodes[0]
        if seed.peer_id in await _peers(node):
            return
        async with node.client() as client:
            await client.post("/api/v1/peers", json={"multiaddr": seed.multiaddr})

    async def _all_connected(self) -> bool:
        seed, *members = self.nodes
        seed_peers = await _peers(seed)
        for member in members:
            if member.peer_id not in seed_peers or seed.peer_id not in await _peers(member):
                return False
        return True

    # --- state ---------------------------------------------------------------------------

    def save(self, state: str) -> None:
        """devnet.json: what scripts and tests drive (and what a later run checks for
        leftovers, should this one be killed)."""
        chain: dict[str, Any] | None = None
        if self.dao is not None:
            deployment = self.dao.deployment
            chain = {
                "rpc_url": self.rpc_url,
                "chain_id": deployment.chain_id,
                "token": deployment.token,
                "governor": deployment.governor,
                "timelock": deployment.timelock,
                "deployer": self.dao.deployer,
                "block_time_s": self.options.block_time_s,
            }
        bridges: dict[str, Any] = {}
        if self.stripe_url:
            bridges["stripe"] = {"node": SEED, "api_base": self.stripe_url}
        if self.ai_url:
            bridges["ai"] = {"node": SEED, "base_url": self.ai_url}
        self.dir.write_state(
            {
                "state": state,
                "pid": os.getpid(),
                "dir": str(self.dir.path),
                "wallet_password_file": str(self.dir.password_file),
                "chain": chain,
                "rpc_url": self.rpc_url or None,
                "nodes": [node.to_json() for node in self.nodes],
                "bridges": bridges,
                "processes": [child.describe() for child in self.children],
            }
        )

    # --- stop ----------------------------------------------------------------------------

    async def stop(self, signals: AsyncIterator[int]) -> None:
        """Nodes first (their chain watchers and bridges would complain about a chain or a
        Stripe that went away first), then the servers. A second Ctrl-C kills at once."""
        if not self.children:
            return
        self.progress("stopping ...")
        node_children = [node.child for node in self.nodes if node.child is not None]
        servers = [child for child in self.children if child not in node_children]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._kill_on_signal, signals)
            killed = await devnet_procs.stop(node_children) + await devnet_procs.stop(servers)
            nursery.cancel_scope.cancel()
        for name in killed:
            self.progress(f"{name} did not stop within {devnet_procs.STOP_TIMEOUT_S:g} s: killed")
        self.save("stopped")

    async def _kill_on_signal(self, signals: AsyncIterator[int]) -> None:
        async for signum in signals:
            self.progress(f"{_signal_name(signum)} again: killing everything now")
            devnet_procs.kill_all(self.children)


def run_devnet(
    options: DevnetOptions, progress: Callable[[str], None], show: Callable[[str], None]
) -> None:
    """Start the devnet, ``show`` its summary, and run until SIGINT, SIGTERM or SIGHUP (the
    terminal closed: the children are in their own sessions and would live on). NodeError if
    it could not start or a child died (everything is stopped either way)."""
    directory = DevnetDir.open(options.directory)
    progress(f"devnet directory: {directory.path}")
    devnet = Devnet(options, directory, progress)
    try:
        trio.run(_main, devnet, show)
    finally:
        directory.close()
    if devnet.failure is not None:
        raise NodeError(devnet.failure)
    progress("stopped")


async def _main(devnet: Devnet, show: Callable[[str], None]) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
        try:
            async with trio.open_nursery() as nursery:
                scope = nursery.cancel_scope
                nursery.start_soon(_cancel_on_signal, signals, scope, devnet.progress)
                started = trio.current_time()
                await devnet.start(nursery)
                show(summary(devnet, trio.current_time() - started))
                # Last: whoever waits for "running" finds the summary printed too.
                devnet.save("running")
                await trio.sleep_forever()
        except BaseExceptionGroup as group:
            # Start-up steps fail inside nurseries: their errors arrive wrapped.
            if (error := first_of(group, NodeError)) is not None:
                raise error from None
            if (http_error := first_of(group, httpx.HTTPError)) is not None:
                raise NodeError(f"a node answered its gateway badly: {http_error}") from None
            raise
        finally:
            with trio.CancelScope(shield=True):
                await devnet.stop(signals)


async def _cancel_on_signal(
    signals: AsyncIterator[int], scope: trio.CancelScope, progress: Callable[[str], None]
) -> None:
    async for signum in signals:
        progress(f"{_signal_name(signum)}: stopping the devnet")
        scope.cancel()
        return


def summary(devnet: Devnet, took_s: float) -> str:
    """What a person needs to use the devnet: printed once everything is up."""
    options, directory = devnet.options, devnet.dir
    width = max(len(node.name) for node in devnet.nodes)
    pad = " " * width
    lines = [
        f"Zion devnet: {len(devnet.nodes)} nodes on {LOCALHOST}, up in {took_s:.0f} s,"
        f" in {directory.path}",
        "",
    ]
    for node in devnet.nodes:
        lines.append(f"  {node.name:<{width}}  {node.peer_id}")
        if node.is_seed:
            lines.append(
                f"  {pad}  seed, no web UI: API {node.gateway}, metrics {node.metrics}/metrics"
            )
        else:
            lines.append(f"  {pad}  {node.login_url}")
    assert devnet.dao is not None
    deployment = devnet.dao.deployment
    lines += [
        "",
        f"chain     {devnet.rpc_url}  (chain ID {deployment.chain_id}, a block every"
        f" {options.block_time_s} s)",
        f"token     {deployment.token}",
        f"governor  {deployment.governor}  (votes last {SETTINGS.voting_period_blocks} blocks)",
        f"timelock  {deployment.timelock}  (the treasury: {TREASURY_ETH // ETH} ETH)",
        f"wallets   every node's own: {WALLET_TOKENS // 10**18:,} ZION (votes delegated to"
        f" itself) and {WALLET_ETH // ETH} ETH",
        f"          password {options.password!r} (devnet only), in {directory.password_file}",
    ]
    if devnet.stripe_url:
        lines.append(f"stripe    localstripe at {devnet.stripe_url}; the seed is the Stripe bridge")
    if devnet.ai_url:
        lines.append(f"ai        AI test server at {devnet.ai_url}; the seed is the AI bridge")
    member = devnet.nodes[1].home.path
    lines += [
        f"files     {directory.state_file} (for scripts); logs in {directory.log('x').parent}",
        "",
        f"try       zion --home {member} listings add --title 'Red bike' --price 120"
        " --category bikes",
        f"          zion --home {member} dao status",
        "",
        "Press Ctrl-C to stop.",
    ]
    return "\n".join(lines)


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _free_port() -> int:
    """A port free now on 127.0.0.1 (another program could take it before the seed does:
    then the seed fails to start, and says so in its log)."""
    with socket.socket() as probe:
        probe.bind((LOCALHOST, 0))
        return int(probe.getsockname()[1])


def render_toml(sections: dict[str, dict[str, object]]) -> str:
    """Only what config.toml needs: tables of strings, booleans, integers and string lists."""
    out = []
    for name, values in sections.items():
        out.append(f"\n[{name}]")
        out += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
    return "\n".join(out).lstrip("\n") + "\n"


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string, for the URLs and paths written here
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


async def _until(condition: Callable[[], Awaitable[T | None]], timeout: float, what: str) -> T:
    with trio.move_on_after(timeout):
        while True:
            try:
                result = await condition()
            except httpx.HTTPError:
                result = None
            if result:
                return result
            await trio.sleep(POLL_INTERVAL_S)
    raise NodeError(f"timed out after {timeout:g} s waiting for {what}")


async def _file_ready(path: Path) -> str | None:
    try:
        return (await trio.Path(path).read_text("utf-8")).strip() or None
    except FileNotFoundError:
        return None


async def _peers(node: DevnetNode) -> set[str]:
    async with node.client() as client:
        items = (await client.get("/api/v1/peers")).raise_for_status().json()["items"]
    return {item["peer_id"] for item in items}
