"""Typed, validated node configuration.

The embedded defaults are configs/default.toml; a node home's config.toml overrides them key by
key, and command-line flags override both. Parameter objects check themselves: any unknown key
or bad value is one line naming the key.
"""

from __future__ import annotations

import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import msgspec

from zion.node.errors import NodeError
from zion.storage.unixfs import PROFILES

PositiveSeconds = Annotated[float, msgspec.Meta(gt=0, le=3600)]


class NetworkConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    listen: list[str]
    bootstrap: list[str]
    mdns: bool
    dht: bool
    max_bootstrap_dials: Annotated[int, msgspec.Meta(ge=0, le=1000)]

    def __post_init__(self) -> None:
        for key, addrs in (("listen", self.listen), ("bootstrap", self.bootstrap)):
            for addr in addrs:
                if not addr.startswith("/"):
                    raise ValueError(f"{key}: {addr!r} is not a multiaddr (it starts with /)")
        for addr in self.bootstrap:
            if "/p2p/" not in addr:
                raise ValueError(f"bootstrap: {addr!r} has no /p2p/<peer ID>")


class GossipConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    degree: Annotated[int, msgspec.Meta(ge=1, le=64)]
    degree_low: Annotated[int, msgspec.Meta(ge=1, le=64)]
    degree_high: Annotated[int, msgspec.Meta(ge=1, le=128)]
    heartbeat_interval_s: PositiveSeconds
    batch_window_ms: Annotated[int, msgspec.Meta(ge=0, le=5000)]

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


_HOST_PORT = re.compile(r"^(?P<host>[A-Za-z0-9.\-]+|\[[0-9a-fA-F:]+\]):(?P<port>\d{1,5})$")


class GatewayConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    listen: str
    allowed_origins: list[str]
    allowed_hosts: list[str]

    def __post_init__(self) -> None:
        try:
            parse_host_port(self.listen)
        except ValueError as exc:
            raise ValueError(f"listen: {exc}") from None

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


class Config(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    network: NetworkConfig
    gossip: GossipConfig
    sync: SyncConfig
    gateway: GatewayConfig
    ipfs: IpfsConfig


def default_toml() -> str:
    return resources.files("zion.configs").joinpath("default.toml").read_text("utf-8")


def load(path: Path | None, overrides: dict[str, Any] | None = None) -> Config:
    """Defaults, then ``path`` (if given), then ``overrides`` ({"section": {"key": value}})."""
    merged = tomllib.loads(default_toml())
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


def _merge(base: dict[str, Any], extra: dict[str, Any], path: Path | None) -> None:
    for section, values in extra.items():
        if section not in base:
            where = f"{path}: " if path else ""
            raise NodeError(f"{where}unknown section [{section}]")
        if not isinstance(values, dict):
            raise NodeError(f"{section} must be a table")
        base[section].update(values)


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
