"""Serving the app with hypercorn's trio worker, inside the node's nursery."""

from __future__ import annotations

import logging
from typing import Final

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve
from starlette.applications import Starlette

from zion.gateway.security import GatewaySecurity

#: Hypercorn waits this long for open requests (SSE streams never finish) at shutdown.
GRACEFUL_TIMEOUT_S: Final = 1.0


async def serve_gateway(
    app: Starlette,
    security: GatewaySecurity,
    host: str,
    port: int,
    *,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; reports the base URL (with the real port) once listening."""
    config = HypercornConfig()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.graceful_timeout = GRACEFUL_TIMEOUT_S
    config.accesslog = None
    config.errorlog = logging.getLogger("zion.gateway.server")
    config.keep_alive_timeout = 30
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(serve, app, config)
        base_url = str(binds[0])
        security.set_port(int(base_url.rsplit(":", 1)[1]))
        task_status.started(base_url)
