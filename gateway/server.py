"""Serving the app with hypercorn's trio worker, inside the node's nursery."""

from __future__ import annotations

import logging
from typing import Any, Final

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve
from starlette.applications import Starlette

from zion.gateway.security import GatewaySecurity

#: Hypercorn waits this long for open requests (SSE streams never finish) at shutdown.
GRACEFUL_TIMEOUT_S: Final = 1.0


async def serve_asgi(
    app: Any,
    host: str,
    port: int,
    logger: str,
    *,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve an ASGI app until cancelled; reports the base URL (with the real port) once
    listening. Errors go to the ``logger`` log; requests are not logged."""
    config = HypercornConfig()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.graceful_timeout = GRACEFUL_TIMEOUT_S
    config.accesslog = None
    config.errorlog = logging.getLogger(logger)
    config.keep_alive_timeout = 30
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(serve, app, config)
        task_status.started(str(binds[0]))


async def serve_gateway(
    app: Starlette,
    security: GatewaySecurity,
    host: str,
    port: int,
    *,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; reports the base URL (with the real port) once listening."""
    async with trio.open_nursery() as nursery:
        base_url = await nursery.start(serve_asgi, app, host, port, "zion.gateway.server")
        security.set_port(int(base_url.rsplit(":", 1)[1]))
        task_status.started(base_url)
