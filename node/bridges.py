"""Bridges: services a node with a secret offers to other nodes over libp2p.

The operator's side is node.bridge_server (a ``BridgeServer`` per service: limits and policy,
then the service's handler); the member's side is node.bridge_client (which bridges exist, and
asking them). This module holds what both share: the error every failure becomes, its HTTP
view, and how secrets are read.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from zion.gateway.services import BridgeFailure
from zion.node.errors import NodeError
from zion.protocols import bridge

#: The longest a bridge works on one answer (an AI answer streams for a while).
ANSWER_TIMEOUT_S: Final = 120.0

#: Why a member's request failed without a bridge's answer.
NO_BRIDGE: Final = "no-bridge"
UNREACHABLE: Final = "unreachable"
TIMEOUT: Final = "timeout"


class BridgeError(NodeError):
    """A bridge request that did not succeed: ``reason`` is one of protocols.bridge.REASONS or
    NO_BRIDGE / UNREACHABLE / TIMEOUT; ``bridge`` the peer that said so, if one did."""

    def __init__(self, reason: str, message: str = "", bridge: str | None = None) -> None:
        super().__init__(f"{reason}: {message}" if message else reason)
        self.reason = reason
        self.message = message or reason
        self.bridge = bridge


#: The HTTP status each reason becomes at the gateway.
_STATUS_OF_REASON: Final = {
    bridge.FORBIDDEN: 403,
    bridge.RATE_LIMITED: 429,
    bridge.QUOTA_EXHAUSTED: 429,
    bridge.BAD_REQUEST: 400,
    bridge.UPSTREAM_FAILED: 502,
    NO_BRIDGE: 503,
    UNREACHABLE: 503,
    TIMEOUT: 504,
}


def as_service_error(exc: BridgeError) -> BridgeFailure:
    """The gateway's view of a bridge failure; the listing checks' reasons are 422."""
    status = _STATUS_OF_REASON.get(exc.reason, 422)
    return BridgeFailure(status, exc.reason, exc.message, exc.bridge)


def read_secret(what: str, env: str, file: str) -> str:
    """A secret from the file named in config, else from the named environment variable."""
    if file:
        try:
            secret = Path(file).read_text("utf-8").strip()
        except OSError as exc:
            raise NodeError(f"{what}: cannot read {file}: {exc.strerror}") from None
    else:
        secret = os.environ.get(env, "").strip() if env else ""
    if not secret:
        where = f"the file {file}" if file else f"the environment variable {env}"
        raise NodeError(f"{what} is needed in {where}")
    return secret
