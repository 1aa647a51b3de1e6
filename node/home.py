"""The node home: identity key, config, database and API token on disk.

Secrets (the key and the API token) are created with mode 0600 from the first byte: they are
opened with O_EXCL and that mode rather than chmod-ed after writing.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from zion.node import config as config_module
from zion.node.errors import NodeError

DEFAULT_HOME = "~/.zion"
HOME_ENV = "ZION_HOME"
SECRET_MODE = 0o600


def resolve_home(flag: str | None) -> Path:
    """--home, else $ZION_HOME, else ~/.zion."""
    chosen = flag or os.environ.get(HOME_ENV) or DEFAULT_HOME
    return Path(chosen).expanduser().resolve()


@dataclass(frozen=True)
class NodeHome:
    path: Path

    @property
    def key_file(self) -> Path:
        return self.path / "identity.key"

    @property
    def config_file(self) -> Path:
        return self.path / "config.toml"

    @property
    def database_file(self) -> Path:
        return self.path / "zion.db"

    @property
    def blocks_dir(self) -> Path:
        return self.path / "blocks"

    @property
    def wallets_dir(self) -> Path:
        return self.path / "wallets"

    @property
    def token_file(self) -> Path:
        return self.path / "api_token"

    @property
    def metrics_file(self) -> Path:
        """Where a running node writes the URL of its metrics endpoint."""
        return self.path / "metrics.url"

    @property
    def gateway_file(self) -> Path:
        """Written by a running node: the gateway's base URL, for the CLI."""
        return self.path / "gateway.url"

    def exists(self) -> bool:
        return self.key_file.exists() and self.config_file.exists()

    def init(self) -> bool:
        """Create whatever is missing; return True if anything was created."""
        created = False
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not self.key_file.exists():
            seed = Ed25519PrivateKey.generate().private_bytes(
                Encoding.Raw, PrivateFormat.Raw, NoEncryption()
            )
            write_secret(self.key_file, seed)
            created = True
        if not self.config_file.exists():
            _write_atomic(self.config_file, config_module.commented_defaults().encode("utf-8"))
            created = True
        if not self.token_file.exists():
            write_secret(self.token_file, secrets.token_urlsafe(32).encode("ascii"))
            created = True
        return created

    def load_key(self) -> Ed25519PrivateKey:
        try:
            seed = self.key_file.read_bytes()
        except OSError as exc:
            raise NodeError(f"cannot read {self.key_file}: {exc.strerror}") from None
        if len(seed) != 32:
            raise NodeError(f"{self.key_file} is not a 32-byte Ed25519 seed")
        check_private(self.key_file)
        return Ed25519PrivateKey.from_private_bytes(seed)

    def load_token(self) -> str:
        try:
            token = self.token_file.read_text("ascii").strip()
        except OSError as exc:
            raise NodeError(f"cannot read {self.token_file}: {exc.strerror}") from None
        if len(token) < 16:
            raise NodeError(f"{self.token_file} holds no usable token")
        return token

    def load_config(
        self, overrides: dict[str, dict[str, object]] | None = None, profile: str = "member"
    ) -> config_module.Config:
        path = self.config_file if self.config_file.exists() else None
        return config_module.load(path, overrides, profile)


def check_private(path: Path) -> None:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise NodeError(f"{path} is readable by others (mode {mode:o}): chmod 600 {path}")


def write_secret(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SECRET_MODE)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
