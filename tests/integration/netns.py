"""Linux network namespaces made by a test (``ip netns``), joined by veth pairs; deleted when
the test ends, and those of a run killed before its cleanup deleted by the next run.

Nodes run inside with ``ip netns exec`` (NodeProcess's ``prefix``). The test process stays in
the root namespace: ``Lab.reach_from_root`` gives a namespace an address the root namespace
reaches over a veth pair of its own, for the nodes' HTTP gateways (``[gateway] allow_remote``,
every request carrying the API token).

Needs root and iproute2's ``ip``: CI runs as root, and dev.sh installs iproute2 for the tests.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import secrets
import shutil
import signal
import subprocess
from pathlib import Path
from types import TracebackType

import pytest

#: Namespaces are named ``zion-ns-<pid>-<tag>-<name>``.
NS_PREFIX = "zion-ns-"
#: Where the root namespace's ends of the gateway veth pairs go: a /30 per namespace, in a
#: random /28 of this range that no address or route of the machine overlaps.
ROOT_RANGE = ipaddress.ip_network("10.200.0.0/14")
COMMAND_TIMEOUT_S = 30
GATEWAY_CONFIG = "[gateway]\nallow_remote = true\n"


def run(*args: str, check: bool = True) -> str:
    result = subprocess.run(args, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
    if check and result.returncode != 0:
        raise RuntimeError(f"`{' '.join(args)}` failed: {result.stderr.strip()}")
    return result.stdout


def ip(command: str, check: bool = True) -> str:
    """``ip`` with the words of ``command``."""
    return run("ip", *command.split(), check=check)


def require_namespaces(test: str, tools: tuple[str, ...] = ("ip",)) -> None:
    """Outside CI, skip without root or the tools; in CI (``CI`` set) fail instead, as CI runs
    as root with them installed: the test must not pass there by not running."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if os.geteuid() == 0 and not missing:
        return
    reason = (
        f"{test} makes network namespaces: it needs root and {', '.join(tools)}"
        f" (effective uid {os.geteuid()}; missing: {', '.join(missing) or 'nothing'})"
    )
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def delete_stale_namespaces() -> None:
    """Namespaces of a test run that is gone, with the nodes it left running in them."""
    for line in ip("netns list").splitlines():
        name = (line.split() or [""])[0]
        match = re.fullmatch(re.escape(NS_PREFIX) + r"(\d+)-[0-9a-f]+-[\w-]+", name)
        if match and not Path(f"/proc/{match[1]}").exists():
            for pid in ip(f"netns pids {name}", check=False).split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
            ip(f"netns delete {name}", check=False)


def _free_root_subnet() -> ipaddress.IPv4Network:
    words = (ip("-4 -o addr show") + ip("-4 route show")).split()
    used = [
        ipaddress.ip_network(word, strict=False)
        for word in words
        if re.fullmatch(r"\d+\.\d+\.\d+\.\d+(/\d+)?", word)
    ]
    subnets = list(ROOT_RANGE.subnets(new_prefix=28))
    for _ in range(100):
        subnet = subnets[secrets.randbelow(len(subnets))]
        if not any(subnet.overlaps(net) for net in used):
            return subnet
    raise RuntimeError(f"no free /28 in {ROOT_RANGE} for the gateways")


class Lab:
    """The namespaces and veth pairs of one test: ``with Lab() as lab: ...``."""

    def __init__(self) -> None:
        self.tag = secrets.token_hex(3)
        self._namespaces: list[str] = []
        self._root_devs: list[str] = []
        self._devs = 0
        self._gateway_nets: list[ipaddress.IPv4Network] = []

    def __enter__(self) -> Lab:
        delete_stale_namespaces()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # A veth pair goes with either end, and a namespace's interfaces go with it once no
        # process is left in it (the test has stopped its nodes by now).
        for dev in self._root_devs:
            ip(f"link delete {dev}", check=False)
        for namespace in self._namespaces:
            ip(f"netns delete {namespace}", check=False)

    def namespace(self, name: str) -> str:
        full = f"{NS_PREFIX}{os.getpid()}-{self.tag}-{name}"
        ip(f"netns add {full}")
        self._namespaces.append(full)
        ip(f"-n {full} link set lo up")
        return full

    @staticmethod
    def sysctl(namespace: str, key: str, value: str | int) -> None:
        """``key`` as in /proc/sys (net/ipv4/ip_forward): it shows the network namespace of
        the process that opens it, hence the shell inside."""
        run("ip", "netns", "exec", namespace, "sh", "-c", f"echo {value} > /proc/sys/{key}")

    def _dev(self) -> str:
        """A new interface name (15 characters at most)."""
        self._devs += 1
        return f"z{self.tag}{self._devs}"

    def link(self, a: str, a_address: str, b: str, b_address: str) -> tuple[str, str]:
        """A veth pair between namespaces ``a`` and ``b``, with the addresses given (with
        their prefix length, ``10.99.0.1/24``), up; its two interface names."""
        a_dev, b_dev = self._dev(), self._dev()
        ip(f"link add {a_dev} netns {a} type veth peer name {b_dev} netns {b}")
        for namespace, dev, address in ((a, a_dev, a_address), (b, b_dev, b_address)):
            ip(f"-n {namespace} addr add {address} dev {dev}")
            ip(f"-n {namespace} link set {dev} up")
        return a_dev, b_dev

    def reach_from_root(self, namespace: str) -> str:
        """An address in ``namespace`` that the root namespace reaches (over a /30 of its
        own): where the nodes inside serve their gateways."""
        if not self._gateway_nets:
            self._gateway_nets = list(_free_root_subnet().subnets(new_prefix=30))
        net = self._gateway_nets.pop(0)
        host, guest = (str(net.network_address + k) for k in (1, 2))
        root_dev, inside = self._dev(), self._dev()
        ip(f"link add {root_dev} type veth peer name {inside} netns {namespace}")
        self._root_devs.append(root_dev)
        ip(f"addr add {host}/30 dev {root_dev}")
        ip(f"link set {root_dev} up")
        ip(f"-n {namespace} addr add {guest}/30 dev {inside}")
        ip(f"-n {namespace} link set {inside} up")
        return guest


def spawn_options(namespace: str, listen_ip: str, gateway_ip: str) -> dict[str, object]:
    """NodeProcess options for a node in ``namespace``."""
    return {
        "prefix": ["ip", "netns", "exec", namespace],
        "listen": f"/ip4/{listen_ip}/tcp/0",
        "gateway": f"{gateway_ip}:0",
    }
