"""Typed, validated node configuration.

The embedded defaults are configs/default.toml; a node home's config.toml overrides them key by
key, and command-line flags override both. Parameter objects check themselves: any unknown key
or bad value is one line naming the key.
"""

from __future__ import annotations

import json
import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Final

import msgspec

from zion.gateway.security import is_loopback
from zion.node.errors import NodeError
from zion.protocols.limits import MAX_BATCH_RECORDS
from zion.storage.unixfs import PROFILES

PositiveSeconds = Annotated[float, msgspec.Meta(gt=0, le=3600)]


class NetworkConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    listen: list[str]
    bootstrap: list[str]
    #: Addresses told to peers instead of the listen addresses (a seed's public address).
    announce: list[str] = []
    #: Answer other nodes' AutoNAT dial-back requests (seeds).
    autonat_service: bool = False
    #: Turn a relayed connection into a direct one by hole punching (DCUtR, TCP).
    hole_punching: bool = True
    #: Also dial the network's seeds listed in configs/bootstrap.toml.
    default_bootstrap: bool = True
    #: Below this many connected peers, look for more (bootstrap, DHT, mDNS).
    min_peers: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 8
    mdns: bool
    dht: bool
    #: "client" (asks the DHT) or "server" (also answers it: seed nodes).
    dht_mode: str = "client"
    max_bootstrap_dials: Annotated[int, msgspec.Meta(ge=0, le=1000)]
    #: Established connections at most, of them at most max_inbound that others opened, and
    #: at most max_connections_per_peer to one peer.
    max_connections: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 32
    max_inbound: Annotated[int, msgspec.Meta(ge=0, le=100_000)] = 24
    max_connections_per_peer: Annotated[int, msgspec.Meta(ge=1, le=16)] = 2

    def __post_init__(self) -> None:
        if self.max_inbound > self.max_connections:
            raise ValueError("max_inbound: more than max_connections")
        if self.dht_mode not in ("client", "server"):
            raise ValueError(f"dht_mode: {self.dht_mode!r} is not client or server")
        named = {"listen": self.listen, "bootstrap": self.bootstrap, "announce": self.announce}
        for key, addrs in named.items():
            for addr in addrs:
                if not addr.startswith("/"):
                    raise ValueError(f"{key}: {addr!r} is not a multiaddr (it starts with /)")
        for addr in self.bootstrap:
            check_bootstrap_address(addr, "bootstrap")

    def bootstrap_peers(self) -> list[str]:
        """The bootstrap list: this config's, then the network's seeds, without repeats."""
        seeds = network_seeds() if self.default_bootstrap else []
        return list(dict.fromkeys([*self.bootstrap, *seeds]))


def check_bootstrap_address(addr: str, key: str) -> None:
    if not addr.startswith("/"):
        raise ValueError(f"{key}: {addr!r} is not a multiaddr (it starts with /)")
    if "/p2p/" not in addr:
        raise ValueError(f"{key}: {addr!r} has no /p2p/<peer ID>")


def network_seeds() -> list[str]:
    """configs/bootstrap.toml's seeds, checked (a unit test keeps the shipped file valid)."""
    text = resources.files("zion.configs").joinpath("bootstrap.toml").read_text("utf-8")
    seeds = tomllib.loads(text).get("seeds", [])
    for addr in seeds:
        check_bootstrap_address(addr, "configs/bootstrap.toml seeds")
    return list(seeds)


class RelayConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Circuit relay v2 as a service for others (seed nodes)."""

    service: bool
    max_reservations: Annotated[int, msgspec.Meta(ge=1, le=100_000)]
    max_reservations_per_ip: Annotated[int, msgspec.Meta(ge=1, le=100_000)]
    max_circuits_per_peer: Annotated[int, msgspec.Meta(ge=1, le=1000)]
    circuit_duration_s: Annotated[int, msgspec.Meta(ge=1, le=86_400)]
    circuit_bytes: Annotated[int, msgspec.Meta(ge=1024, le=1 << 40)]
    reservation_ttl_s: Annotated[int, msgspec.Meta(ge=60, le=86_400)]


class GossipConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    degree: Annotated[int, msgspec.Meta(ge=1, le=64)]
    degree_low: Annotated[int, msgspec.Meta(ge=1, le=64)]
    degree_high: Annotated[int, msgspec.Meta(ge=1, le=128)]
    heartbeat_interval_s: PositiveSeconds
    batch_window_ms: Annotated[int, msgspec.Meta(ge=0, le=5000)]
    #: Records taken per second from one peer's gossip, with bursts (node/floodcontrol.py).
    peer_records_per_s: Annotated[float, msgspec.Meta(gt=0, le=1_000_000)] = 100.0
    #: At least two full gossip messages (a lower burst could never take one).
    peer_records_burst: Annotated[int, msgspec.Meta(ge=2 * MAX_BATCH_RECORDS, le=10_000_000)] = 1000

    def __post_init__(self) -> None:
        if not self.degree_low <= self.degree <= self.degree_high:
            raise ValueError("degree: need degree_low <= degree <= degree_high")


class SyncConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    interval_s: PositiveSeconds
    timeout_s: PositiveSeconds


class IpfsConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    profile: str
    retrieval_timeout_s: PositiveSeconds
    max_upload_bytes: Annotated[int, msgspec.Meta(ge=1024, le=1 << 40)]
    max_storage_bytes: Annotated[int, msgspec.Meta(ge=1 << 20, le=1 << 50)]

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"profile: {self.profile!r} is not one of {', '.join(PROFILES)}")


_ADDRESS = re.compile(r"^(0x[0-9a-fA-F]{40})?$")


class ChainConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    rpc_url: str
    token: str
    governor: str
    timelock: str
    confirmations: Annotated[int, msgspec.Meta(ge=0, le=1000)]
    relayer: bool
    relayer_wallet: str
    relayer_password_file: str

    def __post_init__(self) -> None:
        if self.rpc_url and not re.match(r"^https?://", self.rpc_url):
            raise ValueError(f"rpc_url: {self.rpc_url!r} is not an http(s) URL")
        for key in ("token", "governor", "timelock", "relayer_wallet"):
            if not _ADDRESS.match(getattr(self, key)):
                raise ValueError(f"{key}: not an Ethereum address (0x and 40 hex digits)")

    @property
    def deployed(self) -> bool:
        return bool(self.rpc_url and self.token and self.governor and self.timelock)


_HOST_PORT = re.compile(r"^(?P<host>[A-Za-z0-9.\-]+|\[[0-9a-fA-F:]+\]):(?P<port>\d{1,5})$")


class GatewayConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    listen: str
    allowed_origins: list[str]
    allowed_hosts: list[str]
    allow_remote: bool = False
    #: Serve the web UI (seed nodes do not: the API stays, for the CLI).
    ui: bool = True

    def __post_init__(self) -> None:
        try:
            host, _ = parse_host_port(self.listen)
        except ValueError as exc:
            raise ValueError(f"listen: {exc}") from None
        if not is_loopback(host) and not self.allow_remote:
            raise ValueError(
                f"listen: {self.listen!r} is reachable from other machines; set"
                " [gateway] allow_remote = true to mean it (then every request needs the token)"
            )

    @property
    def host(self) -> str:
        return parse_host_port(self.listen)[0]

    @property
    def port(self) -> int:
        return parse_host_port(self.listen)[1]


def parse_host_port(text: str) -> tuple[str, int]:
    match = _HOST_PORT.match(text)
    if not match or int(match["port"]) > 65535:
        raise ValueError(f"{text!r} is not HOST:PORT")
    return match["host"].strip("[]"), int(match["port"])


class DmConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    mailbox: bool
    mailbox_per_recipient: Annotated[int, msgspec.Meta(ge=1, le=100_000)]
    mailbox_days: Annotated[int, msgspec.Meta(ge=1, le=365)]
    mailbox_max_bytes: Annotated[int, msgspec.Meta(ge=1 << 20, le=1 << 40)]
    read_receipts: bool


_PEER_ADDR = re.compile(r"^/.+/p2p/[1-9A-HJ-NP-Za-km-z]{40,60}$")
_PEER_ID = re.compile(r"^[1-9A-HJ-NP-Za-km-z]{40,60}$")
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,127}$")


class BridgesConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The bridges this member's node uses (not the ones it runs: that is [bridge.*])."""

    stripe: list[str]
    ai: list[str]
    discover: bool
    embeddings: bool
    timeout_s: PositiveSeconds

    def __post_init__(self) -> None:
        for key, addrs in (("stripe", self.stripe), ("ai", self.ai)):
            for addr in addrs:
                if not _PEER_ADDR.match(addr):
                    raise ValueError(f"{key}: {addr!r} is not a multiaddr ending in /p2p/<peer ID>")


class BridgeAccessConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Who may use one bridge service, how often, and on what terms (announced)."""

    enabled: bool
    access: str
    allow: list[str]
    #: DAO token holders: the least balance, in the token's smallest unit (decimal text).
    min_token_balance: str
    rate_per_minute: Annotated[float, msgspec.Meta(gt=0, le=100_000)]
    burst: Annotated[int, msgspec.Meta(ge=1, le=10_000)]
    quota_per_day: Annotated[int, msgspec.Meta(ge=0, le=10_000_000)]
    #: Requests from everyone together per UTC day (0: no such cap): the operator's bill.
    total_per_day: Annotated[int, msgspec.Meta(ge=0, le=1_000_000_000)]
    terms: Annotated[str, msgspec.Meta(max_length=1000)]
    #: What the operator charges per request, announced (settled outside Zion); 0: nothing.
    price_amount: Annotated[int, msgspec.Meta(ge=0, le=10**15)]
    price_currency: str

    def __post_init__(self) -> None:
        if self.price_amount and not re.fullmatch(r"[A-Z][A-Z0-9]{2,7}", self.price_currency):
            raise ValueError("price_currency: an ISO 4217 code or token symbol, with price_amount")
        if self.access not in ("open", "allowlist", "token"):
            raise ValueError(f"access: {self.access!r} is not open, allowlist or token")
        for peer in self.allow:
            if not _PEER_ID.match(peer):
                raise ValueError(f"allow: {peer!r} is not a peer ID")
        if not re.fullmatch(r"0|[1-9][0-9]{0,77}", self.min_token_balance):
            raise ValueError("min_token_balance: not a whole number")


def _check_secret(owner: str, env: str, file: str) -> None:
    if env and not _ENV_NAME.match(env):
        raise ValueError(f"{owner}_env: {env!r} is not an environment variable name")
    if file and not Path(file).is_absolute():
        raise ValueError(f"{owner}_file: {file!r} must be an absolute path")


class StripeBridgeConfig(BridgeAccessConfig, kw_only=True):
    #: The Stripe API's base URL (empty: Stripe's own; set for a local fake such as localstripe).
    api_base: str
    publishable_key: Annotated[str, msgspec.Meta(max_length=256)]
    secret_key_env: str
    secret_key_file: str
    webhook_secret_env: str
    webhook_secret_file: str
    webhook_tolerance_s: Annotated[int, msgspec.Meta(ge=1, le=3600)]
    currencies: list[str]

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.api_base and not re.match(r"^https?://", self.api_base):
            raise ValueError(f"api_base: {self.api_base!r} is not an http(s) URL")
        _check_secret("secret_key", self.secret_key_env, self.secret_key_file)
        _check_secret("webhook_secret", self.webhook_secret_env, self.webhook_secret_file)
        for currency in self.currencies:
            if not re.fullmatch(r"[A-Z]{3}", currency):
                raise ValueError(f"currencies: {currency!r} is not an ISO 4217 code")


class AiBridgeConfig(BridgeAccessConfig, kw_only=True):
    base_url: str
    model: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    embedding_model: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    api_key_env: str
    api_key_file: str
    timeout_s: PositiveSeconds

    def __post_init__(self) -> None:
        super().__post_init__()
        if not re.match(r"^https?://", self.base_url):
            raise ValueError(f"base_url: {self.base_url!r} is not an http(s) URL")
        _check_secret("api_key", self.api_key_env, self.api_key_file)


class BridgeConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The bridges this node runs for others ([bridge.stripe], [bridge.ai])."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    #: Multiaddrs members dial to reach this bridge (empty: the listen addresses).
    announce: Annotated[list[str], msgspec.Meta(max_length=8)]
    stripe: StripeBridgeConfig
    ai: AiBridgeConfig

    def __post_init__(self) -> None:
        for addr in self.announce:
            if not _PEER_ADDR.match(addr) or len(addr) > 256:
                raise ValueError(f"announce: {addr!r} is not a multiaddr ending in /p2p/<peer ID>")


class MetricsConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    #: HOST:PORT of the Prometheus endpoint (/metrics), separate from the gateway; empty: off.
    listen: str = ""

    def __post_init__(self) -> None:
        if self.listen:
            try:
                parse_host_port(self.listen)
            except ValueError as exc:
                raise ValueError(f"listen: {exc}") from None


class LoggingConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    #: "text" (for people) or "json" (one object per line, for log collectors).
    format: str = "text"

    def __post_init__(self) -> None:
        if self.format not in ("text", "json"):
            raise ValueError(f"format: {self.format!r} is not text or json")


class Config(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    network: NetworkConfig
    relay: RelayConfig
    gossip: GossipConfig
    sync: SyncConfig
    gateway: GatewayConfig
    ipfs: IpfsConfig
    chain: ChainConfig
    dm: DmConfig
    bridges: BridgesConfig
    bridge: BridgeConfig
    metrics: MetricsConfig
    logging: LoggingConfig


#: `zion run --profile`: what a node is for. Each but "member" is an overlay of the defaults
#: in configs/<profile>.toml.
NODE_PROFILES: Final = ("member", "seed")


def default_toml() -> str:
    return resources.files("zion.configs").joinpath("default.toml").read_text("utf-8")


def commented_defaults() -> str:
    """default.toml with every setting commented out: a new home's config.toml. Settings
    that are written out would pin the defaults and hide a profile's (``--profile seed``)."""
    return re.sub(r"(?m)^(?=[a-z_]+ = )", "# ", default_toml())


def profile_toml(profile: str) -> str:
    return resources.files("zion.configs").joinpath(f"{profile}.toml").read_text("utf-8")


def load(
    path: Path | None, overrides: dict[str, Any] | None = None, profile: str = "member"
) -> Config:
    """Defaults, then the profile's overlay, then ``path`` (if given), then ``overrides``
    ({"section": {"key": value}})."""
    if profile not in NODE_PROFILES:
        raise NodeError(f"profile: {profile!r} is not one of {', '.join(NODE_PROFILES)}")
    merged = tomllib.loads(default_toml())
    if profile != "member":
        _merge(merged, tomllib.loads(profile_toml(profile)), None)
    if path is not None:
        try:
            user = tomllib.loads(path.read_text("utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise NodeError(f"{path}: not valid TOML: {exc}") from None
        except OSError as exc:
            raise NodeError(f"cannot read {path}: {exc.strerror}") from None
        _merge(merged, user, path)
    if overrides:
        _merge(merged, overrides, None)
    try:
        return msgspec.convert(merged, Config)
    except msgspec.ValidationError as exc:
        where = f"{path}: " if path else ""
        raise NodeError(f"{where}{_describe(str(exc))}") from None


def _merge(
    base: dict[str, Any], extra: dict[str, Any], path: Path | None, prefix: str = ""
) -> None:
    """Key by key; tables inside sections ([bridge.stripe]) merge key by key too."""
    for section, values in extra.items():
        if section not in base:
            where = f"{path}: " if path else ""
            raise NodeError(f"{where}unknown section [{prefix}{section}]")
        if not isinstance(values, dict):
            raise NodeError(f"{prefix}{section} must be a table")
        for key, value in values.items():
            if isinstance(value, dict) and isinstance(base[section].get(key), dict):
                _merge(base[section], {key: value}, path, f"{prefix}{section}.")
            else:
                base[section][key] = value


def _describe(message: str) -> str:
    """msgspec says "Expected `int`, got `str` - at `$.gossip.degree`"; say "gossip.degree: ...".

    Unknown keys read "Object contains unknown field `x` - at `$.network`".
    """
    text, _, where = message.rpartition(" - at ")
    if not text:
        return message
    path = where.strip("`").removeprefix("$").lstrip(".")
    unknown = re.match(r"Object contains unknown field `(.+)`", text)
    if unknown:
        key = f"{path}.{unknown[1]}" if path else unknown[1]
        return f"unknown key {key}"
    inner = re.match(r"^(\w+): (.*)$", text)
    if inner and path:
        return f"{path}.{inner[1]}: {inner[2]}"
    return f"{path}: {text}" if path else text


def update_file(path: Path, section: str, values: dict[str, str | int | bool]) -> None:
    """Set keys of one section of a config.toml in place, keeping its comments and layout
    (written by hand: tomllib only reads, and the file is ours in a known shape)."""
    lines = path.read_text("utf-8").splitlines() if path.exists() else []
    header = f"[{section}]"
    rendered = {key: f"{key} = {_toml_value(value)}" for key, value in values.items()}
    if header not in (line.strip() for line in lines):
        lines += ["", header, *rendered.values()]
    else:
        start = next(i for i, line in enumerate(lines) if line.strip() == header) + 1
        end = next(
            (i for i in range(start, len(lines)) if lines[i].lstrip().startswith("[")), len(lines)
        )
        for key, line in rendered.items():
            found = next(
                (i for i in range(start, end) if re.match(rf"^\s*{re.escape(key)}\s*=", lines[i])),
                None,
            )
            if found is None:
                lines.insert(end, line)
                end += 1
            else:
                lines[found] = line
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", "utf-8")
    tmp.replace(path)


def _toml_value(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(value)  # a TOML basic string for everything a URL or address holds
