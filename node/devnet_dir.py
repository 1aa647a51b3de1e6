"""The devnet's directory: node homes, logs, the wallet password file and devnet.json.

A directory is a devnet's if it holds ``devnet.lock``, which is also what a running devnet
holds locked: so a second devnet on the same directory is refused while the first runs, and
a directory that holds anything else is never written into.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import time
from pathlib import Path
from typing import IO, Any, Final

from zion.node.devnet_procs import alive
from zion.node.errors import NodeError
from zion.node.home import NodeHome, write_secret

LOCK_FILE: Final = "devnet.lock"
STATE_FILE: Final = "devnet.json"
PASSWORD_FILE: Final = "wallet-password"  # noqa: S105 (a file name)
LOGS_DIR: Final = "logs"
#: devnet.json's format; scripts should check it.
STATE_VERSION: Final = 1


def default_root() -> Path:
    """Where devnets go without --dir: the XDG state directory, as for other tools' state."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "zion" / "devnets"


class DevnetDir:
    def __init__(self, path: Path, lock: IO[str]) -> None:
        self.path = path
        self._lock = lock

    @classmethod
    def open(cls, path: Path | None) -> DevnetDir:
        """Lock ``path`` (made if missing; without it, a new directory under default_root())
        for this devnet. Refuses, before anything is started, a directory that holds other
        things, one where a devnet runs, or one where an earlier devnet's processes are still
        running (it was killed before it could stop them)."""
        if path is None:
            root = default_root()
            root.mkdir(mode=0o700, parents=True, exist_ok=True)
            stamp = time.strftime("%Y%m%d-%H%M%S")
            path = Path(tempfile.mkdtemp(prefix=f"{stamp}-", dir=root))
        path = path.expanduser().absolute()
        if path.exists() and not path.is_dir():
            raise NodeError(f"--dir {path} is a file, not a directory")
        if path.is_dir() and any(path.iterdir()) and not (path / LOCK_FILE).exists():
            raise NodeError(
                f"--dir {path} holds files and is not a devnet's directory (it has no"
                f" {LOCK_FILE}): give a new or empty directory, or one an earlier"
                " `zion devnet` made"
            )
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock = (path / LOCK_FILE).open("a+", encoding="utf-8")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "?"
            lock.close()
            raise NodeError(
                f"another zion devnet (pid {holder}) runs in {path}: stop it first, or give"
                " another --dir"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        directory = cls(path, lock)
        try:
            directory._check_leftovers()
        except NodeError:
            directory.close()
            raise
        directory.state_file.unlink(missing_ok=True)
        return directory

    def close(self) -> None:
        self._lock.close()  # closing releases the lock

    @property
    def state_file(self) -> Path:
        return self.path / STATE_FILE

    @property
    def password_file(self) -> Path:
        return self.path / PASSWORD_FILE

    def home(self, name: str) -> NodeHome:
        return NodeHome(self.path / name)

    def log(self, name: str) -> Path:
        return self.path / LOGS_DIR / f"{name}.log"

    def write_state(self, state: dict[str, Any]) -> None:
        """devnet.json, atomically (a script never reads half of it), 0600: it holds each
        node's login URL, which carries the node's API token."""
        data = {"version": STATE_VERSION, **state}
        write_secret(self.state_file, (json.dumps(data, indent=2) + "\n").encode("utf-8"))

    def _check_leftovers(self) -> None:
        try:
            state = json.loads(self.state_file.read_text("utf-8"))
        except (OSError, ValueError):
            return
        running = [
            p
            for p in state.get("processes", [])
            if isinstance(p, dict) and alive(int(p.get("pid", 0)), int(p.get("start_ticks", -1)))
        ]
        if running:
            names = ", ".join(f"{p['name']} (pid {p['pid']})" for p in running)
            groups = " ".join(f"-{p['pgid']}" for p in running)
            raise NodeError(
                f"processes of an earlier devnet in {self.path} still run: {names}."
                f" Stop them first: kill -- {groups}"
            )
