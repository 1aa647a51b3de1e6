"""`zion doctor`: checks what commonly stops a node working, and says what to fix.

Each check returns a ``Finding`` (ok, warn or fail, what was seen, and for anything not ok
what to do). The checks read the node home and config, and look outward only as far as a
node does itself: its own gateway (and, when the node runs, its status: peers and its AutoNAT
verdict), TCP to its bootstrap peers, its chain's JSON-RPC.
"""

from __future__ import annotations

import email.utils
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import httpx
import multiaddr

from zion.node.bridges import read_secret
from zion.node.config import Config
from zion.node.errors import NodeError
from zion.node.home import NodeHome, check_private
from zion.protocols import limits

Status = Literal["ok", "warn", "fail"]

#: How long a single network check may take.
NETWORK_TIMEOUT_S: Final = 3.0
#: Clock skew worth a warning; beyond MAX_CLOCK_SKEW_MS peers ignore this node's records.
CLOCK_WARN_S: Final = 30.0
CLOCK_FAIL_S: Final = limits.MAX_CLOCK_SKEW_MS / 1000
#: Free disk below this is a warning whatever the storage limit.
MIN_FREE_BYTES: Final = 1 << 30


@dataclass(frozen=True)
class Finding:
    check: str
    status: Status
    detail: str
    fix: str = ""


def ok(check: str, detail: str) -> Finding:
    return Finding(check, "ok", detail)


def warn(check: str, detail: str, fix: str) -> Finding:
    return Finding(check, "warn", detail, fix)


def fail(check: str, detail: str, fix: str) -> Finding:
    return Finding(check, "fail", detail, fix)


def run_checks(home: NodeHome, config: Config) -> list[Finding]:
    checks: list[Callable[[], list[Finding]]] = [
        lambda: check_home(home),
        lambda: check_gateway(home, config),
        lambda: check_listen(home, config),
        lambda: check_network(home, config),
        lambda: check_bootstrap(config),
        lambda: check_chain_and_clock(config),
        lambda: check_disk(home, config),
        lambda: check_bridge_secrets(config),
    ]
    findings: list[Finding] = []
    for check in checks:
        findings += check()
    return findings


def check_home(home: NodeHome) -> list[Finding]:
    found = []
    for path in (home.key_file, home.token_file):
        if not path.exists():
            found.append(fail("home", f"{path} is missing", f"run: zion --home {home.path} init"))
            continue
        try:
            check_private(path)
        except NodeError as exc:
            found.append(fail("home", str(exc), f"chmod 600 {path}"))
    return found or [ok("home", f"{home.path}: identity and token present, private")]


def _running_url(home: NodeHome) -> str | None:
    try:
        return home.gateway_file.read_text("utf-8").strip() or None
    except OSError:
        return None


def check_gateway(home: NodeHome, config: Config) -> list[Finding]:
    url = _running_url(home)
    if url is not None:
        try:
            response = httpx.get(f"{url}/api/v1/node", timeout=NETWORK_TIMEOUT_S)
        except httpx.HTTPError as exc:
            return [
                fail(
                    "gateway",
                    f"{home.gateway_file} names {url}, which does not answer ({exc})",
                    "the node stopped without cleaning up, or hangs: restart it (zion run)",
                )
            ]
        if response.status_code in (200, 401):
            return [ok("gateway", f"the running node answers at {url}")]
        return [fail("gateway", f"{url} answers {response.status_code}", "restart the node")]
    host, port = config.gateway.host, config.gateway.port
    problem = _bind_problem(host, port)
    if problem:
        return [
            fail(
                "gateway",
                f"{config.gateway.listen} is taken ({problem}) and no node of this home runs",
                "stop what uses the port, or set [gateway] listen to another HOST:PORT",
            )
        ]
    return [ok("gateway", f"{config.gateway.listen} is free (the node is not running)")]


def _bind_problem(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be bound now, or None. Port 0 is always free."""
    if port == 0:
        return None
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def _tcp(addr: str) -> tuple[str, int] | None:
    """The (host, port) of a TCP multiaddr, or None for other transports."""
    try:
        parts = multiaddr.Multiaddr(addr)
        host = next(
            (
                parts.value_for_protocol(p)
                for p in ("ip4", "ip6", "dns4", "dns6", "dns")
                if p in [proto.name for proto in parts.protocols()]
            ),
            None,
        )
        port = parts.value_for_protocol("tcp")
    except Exception:  # multiaddr raises many types for addresses without these parts
        return None
    return (str(host), int(port)) if host and port else None


def check_listen(home: NodeHome, config: Config) -> list[Finding]:
    if _running_url(home) is not None:
        return [ok("listen", "the node is running (its listen addresses are in use by it)")]
    found = []
    for addr in config.network.listen:
        target = _tcp(addr)
        if target is None:
            continue
        problem = _bind_problem(*target)
        if problem:
            found.append(
                fail(
                    "listen",
                    f"{addr}: {problem}",
                    "stop what uses the port, or change [network] listen",
                )
            )
    return found or [ok("listen", ", ".join(config.network.listen) + " can be bound")]


def check_network(home: NodeHome, config: Config) -> list[Finding]:
    """The running node's own view of the network: its peers, and whether others can dial
    it (its AutoNAT verdict). Nothing to say of a node that is not running."""
    url = _running_url(home)
    if url is None:
        return []
    try:
        response = httpx.get(
            f"{url}/api/v1/status",
            headers={"Authorization": f"Bearer {home.load_token()}"},
            timeout=NETWORK_TIMEOUT_S,
        )
        response.raise_for_status()
        status = response.json()
    except (httpx.HTTPError, NodeError, ValueError) as exc:
        return [warn("network", f"cannot read the node's status ({exc})", "run: zion status")]
    return judge_network(status, first_of_network=not config.network.bootstrap_peers())


def judge_network(status: dict[str, Any], first_of_network: bool = False) -> list[Finding]:
    """Findings from a node's status (GET /api/v1/status). ``first_of_network``: the node
    knows no bootstrap peer (the first seed of a new network has no one to connect to)."""
    peers = status.get("peers")
    wanted = status.get("discovery", {}).get("min_peers")
    if not isinstance(peers, int) or not isinstance(wanted, int):
        return [warn("network", "the node's status lacks peers", "update the node")]
    if peers == 0:
        found = [
            (warn if first_of_network else fail)(
                "peers",
                "no peer is connected",
                "see the bootstrap check; or dial a peer by hand: zion connect MULTIADDR",
            )
        ]
    elif peers < wanted:
        found = [
            warn(
                "peers",
                f"{peers} peers connected, fewer than [network] min_peers ({wanted});"
                " the node keeps looking",
                "nothing, if the network is that small; else add [network] bootstrap peers",
            )
        ]
    else:
        found = [ok("peers", f"{peers} peers connected")]
    reachability, relayed = status.get("reachability"), status.get("relayed_addrs") or []
    if reachability == "public":
        found.append(ok("reachable", "peers can dial this node (AutoNAT)"))
    elif reachability == "private":
        through = (
            f"through {len(relayed)} relayed addresses"
            if relayed
            else "only once a relay gives it a slot (none yet)"
        )
        found.append(
            warn(
                "reachable",
                f"peers cannot dial this node (AutoNAT); they reach it {through}",
                "forward the TCP port of [network] listen on the router to this machine, and"
                " set [network] announce to the public address; relayed connections are brief",
            )
        )
    else:
        found.append(ok("reachable", "not known yet: AutoNAT asks connected seeds"))
    return found


def check_bootstrap(config: Config) -> list[Finding]:
    peers = config.network.bootstrap_peers()
    if not peers:
        return [
            warn(
                "bootstrap",
                "no bootstrap peers: this node finds others only by mDNS or by hand",
                "add seed nodes to [network] bootstrap (multiaddrs ending in /p2p/<peer ID>)",
            )
        ]
    reachable = []
    for addr in peers:
        target = _tcp(addr)
        if target is None:
            continue
        try:
            with socket.create_connection(target, timeout=NETWORK_TIMEOUT_S):
                reachable.append(addr)
        except OSError:
            continue
    if not reachable:
        return [
            fail(
                "bootstrap",
                f"none of the {len(peers)} bootstrap peers answers on TCP",
                "check the network and firewall (outgoing TCP), and that the seeds are up",
            )
        ]
    return [ok("bootstrap", f"{len(reachable)} of {len(peers)} bootstrap peers answer")]


def check_chain_and_clock(config: Config) -> list[Finding]:
    chain = config.chain
    if not chain.rpc_url:
        return [
            ok("chain", "no chain configured (the DAO is off)"),
            warn(
                "clock",
                "not checked: no time source (the chain's RPC server gives one)",
                "keep the clock synchronised (NTP: timedatectl set-ntp true); peers ignore"
                f" records more than {CLOCK_FAIL_S:.0f} s in their future",
            ),
        ]
    body = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
    try:
        sent = time.time()
        response = httpx.post(chain.rpc_url, json=body, timeout=NETWORK_TIMEOUT_S)
        received = time.time()
        chain_id = int(response.json()["result"], 16)
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        return [
            fail(
                "chain",
                f"{chain.rpc_url} does not answer JSON-RPC ({exc})",
                "start the Ethereum node, or fix [chain] rpc_url",
            )
        ]
    found = [ok("chain", f"{chain.rpc_url} answers: chain ID {chain_id}")]
    found += _contracts(chain.rpc_url, {"token": chain.token, "governor": chain.governor})
    found.append(_clock(response.headers.get("date"), (sent + received) / 2, chain.rpc_url))
    return found


def _contracts(rpc_url: str, contracts: dict[str, str]) -> list[Finding]:
    found = []
    for name, address in contracts.items():
        if not address:
            continue
        body = {"jsonrpc": "2.0", "id": 1, "method": "eth_getCode", "params": [address, "latest"]}
        try:
            code = httpx.post(rpc_url, json=body, timeout=NETWORK_TIMEOUT_S).json()["result"]
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            found.append(fail("chain", f"cannot read the {name} contract: {exc}", "retry"))
            continue
        if code in ("0x", "", None):
            found.append(
                fail(
                    "chain",
                    f"no contract at [chain] {name} = {address} on this chain",
                    "copy the addresses of the DAO deployed on this chain (zion dao deploy)",
                )
            )
    return found


def _clock(date_header: str | None, local: float, source: str) -> Finding:
    if not date_header:
        return warn("clock", f"not checked: {source} sends no Date header", "keep NTP on")
    try:
        remote = email.utils.parsedate_to_datetime(date_header).timestamp()
    except (TypeError, ValueError):
        return warn("clock", f"not checked: {source} sends a bad Date header", "keep NTP on")
    skew = local - remote
    detail = f"{abs(skew):.0f} s {'ahead of' if skew > 0 else 'behind'} {source}"
    fix = "synchronise the clock (timedatectl set-ntp true)"
    # The Date header has whole seconds: up to a second of difference is noise.
    if abs(skew) > CLOCK_FAIL_S:
        return fail("clock", detail + ": peers ignore records from the future", fix)
    if abs(skew) > CLOCK_WARN_S:
        return warn("clock", detail, fix)
    return ok("clock", f"within {max(1.0, abs(skew)):.0f} s of {source}")


def check_disk(home: NodeHome, config: Config) -> list[Finding]:
    import shutil

    usage = shutil.disk_usage(home.path)
    wanted = config.ipfs.max_storage_bytes
    free_gib = usage.free / (1 << 30)
    if usage.free < MIN_FREE_BYTES:
        return [
            fail(
                "disk",
                f"{free_gib:.2f} GiB free under {home.path}",
                "free some space, or move the home (--home) to a larger disk",
            )
        ]
    if usage.free < wanted:
        return [
            warn(
                "disk",
                f"{free_gib:.1f} GiB free, less than [ipfs] max_storage_bytes"
                f" ({wanted / (1 << 30):.1f} GiB)",
                "lower [ipfs] max_storage_bytes, or free space",
            )
        ]
    return [ok("disk", f"{free_gib:.1f} GiB free under {home.path}")]


def check_bridge_secrets(config: Config) -> list[Finding]:
    found = []
    stripe, ai = config.bridge.stripe, config.bridge.ai
    wanted = []
    if stripe.enabled:
        wanted += [
            ("[bridge.stripe] secret key", stripe.secret_key_env, stripe.secret_key_file),
            (
                "[bridge.stripe] webhook secret",
                stripe.webhook_secret_env,
                stripe.webhook_secret_file,
            ),
        ]
    if ai.enabled:
        wanted.append(("[bridge.ai] API key", ai.api_key_env, ai.api_key_file))
    for what, env, file in wanted:
        try:
            read_secret(what, env, file)
        except NodeError as exc:
            found.append(fail("bridges", str(exc), "give the secret in that variable or file"))
        else:
            where = file or f"${env}"
            if file:
                try:
                    check_private(Path(file))
                except NodeError as exc:
                    found.append(fail("bridges", str(exc), f"chmod 600 {file}"))
                    continue
            found.append(ok("bridges", f"{what} found in {where}"))
    return found
