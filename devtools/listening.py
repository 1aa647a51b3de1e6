"""Test servers run as subprocesses announce themselves with one line on stdout,
``listening http://127.0.0.1:PORT``; this reads it as soon as it is written."""

from __future__ import annotations

import os
import re
import selectors
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

HOST: Final = "127.0.0.1"
#: A server that has not said where it listens by then is not going to.
START_TIMEOUT_S: Final = 30.0
#: The line a server prints once it accepts connections (and nothing before it).
LISTENING_LINE: Final = re.compile(rf"listening http://{re.escape(HOST)}:(\d+)")


class ServerStartError(RuntimeError):
    """The server exited, or did not say where it listens, in time."""


@contextmanager
def running_module(module: str, *args: str, what: str) -> Iterator[str]:
    """Run ``python -m module args``; yield its base URL (``http://127.0.0.1:PORT``) once it
    says it listens; kill it on exit."""
    process = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        port = read_listening_port(process, START_TIMEOUT_S, what)
        yield f"http://{HOST}:{port}"
    finally:
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


def read_listening_port(process: subprocess.Popen[bytes], timeout: float, what: str) -> int:
    if process.stdout is None:
        raise ValueError("the process's stdout must be a pipe")
    fd = process.stdout.fileno()
    deadline = time.monotonic() + timeout
    buffer = b""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ServerStartError(f"{what} did not start within {timeout}s")
            if not selector.select(remaining):
                continue
            data = os.read(fd, 4096)
            if not data:
                raise ServerStartError(f"{what} exited with {process.wait()}")
            buffer += data
    line = buffer.split(b"\n", 1)[0].decode()
    match = LISTENING_LINE.fullmatch(line.strip())
    if match is None:
        raise ServerStartError(f"unexpected first line from {what}: {line!r}")
    return int(match.group(1))
