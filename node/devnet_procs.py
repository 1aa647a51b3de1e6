"""The processes of `zion devnet`: started, watched, and stopped with everything they started.

Each child runs in a session (and process group) of its own. So the terminal's Ctrl-C reaches
only the devnet, which then stops the children in order, instead of every process at once
(where a node that stops first would look to the devnet like a node that crashed). And a
child's own children (npm's anvil is a Node.js wrapper around the real binary) are stopped
with it: signals go to the whole group.

Linux only (/proc), like the rest of the devnet's tooling (npm's anvil binary).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import trio

from zion.node.errors import NodeError

#: How often a starting child's log is looked at for the line that says it is ready.
LOG_POLL_INTERVAL_S: Final = 0.05
#: A child that has not stopped this long after SIGTERM is killed (nodes give themselves 4 s).
STOP_TIMEOUT_S: Final = 10.0
#: After SIGKILL the kernel needs only a moment; waiting longer would hide a stuck D state.
KILL_TIMEOUT_S: Final = 5.0
#: Lines of a child's log shown when it fails.
LOG_TAIL_LINES: Final = 15


@dataclass
class Child:
    name: str
    process: trio.Process
    log: Path
    #: Where this run's output starts in the log (earlier runs' output is kept above it).
    log_start: int
    #: /proc/<pid>/stat's start time: with the PID, it names this process and no later one.
    start_ticks: int
    #: Set once the devnet means it to stop: its exit is then no failure.
    stopping: bool = field(default=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_text(self) -> str:
        try:
            with self.log.open("rb") as handle:
                handle.seek(self.log_start)
                return handle.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self) -> str:
        lines = self.log_text().splitlines()[-LOG_TAIL_LINES:]
        return "\n".join(f"    {line}" for line in lines) or "    (nothing)"

    def describe(self) -> dict[str, object]:
        """For devnet.json: enough to find the process later, and to tell it from a newer
        process that got the same PID."""
        return {
            "name": self.name,
            "pid": self.pid,
            "pgid": self.pid,
            "start_ticks": self.start_ticks,
            "log": str(self.log),
        }


async def spawn(
    name: str, args: Sequence[str], log: Path, env: Mapping[str, str] | None = None
) -> Child:
    """Start ``args`` in a new session, its output appended to ``log``."""
    log.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # 0600: a node prints its login URL, which carries its API token.
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "ab") as out:
        out.write(f"\n=== zion devnet: {' '.join(args)}\n".encode())
        out.flush()
        start = out.tell()
        try:
            process = await trio.lowlevel.open_process(
                list(args),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                start_new_session=True,
            )
        except OSError as exc:
            raise NodeError(f"cannot start {name} ({args[0]}): {exc.strerror or exc}") from None
    return Child(name, process, log, start, start_ticks(process.pid) or 0)


async def wait_for_line(child: Child, pattern: re.Pattern[str], timeout: float) -> re.Match[str]:
    """The first match of ``pattern`` in what ``child`` printed in this run. The log file is
    read rather than a pipe, so that the child can never block on output nobody reads."""
    with trio.move_on_after(timeout):
        while True:
            if match := pattern.search(child.log_text()):
                return match
            if child.process.returncode is not None:
                raise NodeError(
                    f"{child.name} exited at start (code {child.process.returncode});"
                    f" its log ({child.log}) ends:\n{child.log_tail()}"
                )
            await trio.sleep(LOG_POLL_INTERVAL_S)
    raise NodeError(
        f"{child.name} did not start within {timeout:g} s; its log ({child.log}) ends:\n"
        f"{child.log_tail()}"
    )


async def stop(children: Sequence[Child]) -> list[str]:
    """SIGTERM to every child's group, SIGKILL to the groups of those still there after
    STOP_TIMEOUT_S, and to whatever stayed behind in a group whose leader exited. Returns
    the names of the children that had to be killed."""
    for child in children:
        child.stopping = True
        _signal_group(child.pid, signal.SIGTERM)
    killed: list[str] = []
    async with trio.open_nursery() as nursery:
        for child in children:
            nursery.start_soon(_stop_one, child, killed)
    return killed


async def _stop_one(child: Child, killed: list[str]) -> None:
    with trio.move_on_after(STOP_TIMEOUT_S):
        await child.process.wait()
    if child.process.returncode is None:
        killed.append(child.name)
        _signal_group(child.pid, signal.SIGKILL)
        with trio.move_on_after(KILL_TIMEOUT_S):
            await child.process.wait()
    if group_members(child.pid):
        _signal_group(child.pid, signal.SIGKILL)


def kill_all(children: Sequence[Child]) -> None:
    for child in children:
        child.stopping = True
        _signal_group(child.pid, signal.SIGKILL)


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # the whole group is gone already
        os.killpg(pgid, signum)


def start_ticks(pid: int) -> int | None:
    """When the process started (clock ticks after boot), or None if there is no such process."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def group_members(pgid: int) -> list[int]:
    """Living processes in process group ``pgid`` (zombies are dead: they hold nothing)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields and fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def alive(pid: int, ticks: int) -> bool:
    """Whether the process that started at ``ticks`` with this PID still runs."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != "Z" and int(fields[19]) == ticks


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name (which may hold spaces and parentheses): the
    first field is the state, the third the process group, the twentieth the start time."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rpartition(")")[2].split()
