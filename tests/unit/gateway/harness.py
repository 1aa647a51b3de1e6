"""A real gateway on 127.0.0.1 over the real services, SQLite store and blockstore (no
network): the fixture the gateway tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eth_account.signers.local import LocalAccount

from zion.contracts.client import Dao
from zion.gateway.app import build_app
from zion.gateway.security import GatewaySecurity, cookie_name
from zion.gateway.server import serve_gateway
from zion.gateway.services import Services
from zion.node import config
from zion.node.assistant import AssistantService
from zion.node.bridge_client import BridgeClient, BridgeDirectory
from zion.node.bridge_host import BridgeHost, BridgesService
from zion.node.channels import ChannelService
from zion.node.content import ContentService
from zion.node.dmkeys import DmKeyring
from zion.node.dms import DmService
from zion.node.events import EventFeed
from zion.node.governance import GovernanceService
from zion.node.home import NodeHome
from zion.node.ingest import Ingest
from zion.node.market import MarketService
from zion.node.payments import PaymentsService
from zion.node.profiles import ProfileService
from zion.node.publishing import Publisher
from zion.protocols import identity, sync
from zion.storage.blockstore import Blockstore
from zion.storage.bridges import BridgeStore
from zion.storage.dao import DaoStore
from zion.storage.database import Database
from zion.storage.dms import DmStore
from zion.storage.pins import PinStore
from zion.storage.records import RecordStore

#: Chain calls on the in-process eth-tester cost seconds of CPU; with the suite on two
#: workers (one running the soak) they can outlast httpx's default of 5 s.
HTTP_TIMEOUT_S = 60.0
TOKEN = "t" * 43
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: Small, so tests can exceed it cheaply.
UPLOAD_LIMIT = 8 * 1024 * 1024


class _NodeInfo:
    def __init__(self, peer_id: str) -> None:
        self.peer_id = peer_id

    def addrs(self) -> list[str]:
        return ["/ip4/127.0.0.1/tcp/4001"]

    def peers(self) -> list[dict[str, Any]]:
        return []

    async def connect(self, multiaddr: str) -> str:
        raise NotImplementedError

    def status(self) -> dict[str, Any]:
        return {}


def login_cookie(client: httpx.AsyncClient, value: str | None = None) -> dict[str, str]:
    """The Cookie header a logged-in browser sends to this gateway (``value``: another)."""
    port = client.base_url.port or 80
    session = GatewaySecurity(token=TOKEN, host="127.0.0.1", port=port).new_session()
    return {"Cookie": f"{cookie_name(port)}={session if value is None else value}"}


def anonymous(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """A client of the same gateway that presents no token (close it after use)."""
    return httpx.AsyncClient(base_url=client.base_url)


async def _no_network(peer_id: str, protocol: str) -> None:
    raise ConnectionError("this gateway has no network")


async def _no_dial(address: str) -> str:
    raise ConnectionError("this gateway has no network")


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(tmp_path, None) as http:
        yield http


@asynccontextmanager
async def serve(
    tmp_path: Path, connect_dao: Callable[[], Dao] | None, account: LocalAccount | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway over fresh services; ``connect_dao`` gives the governance service a chain."""
    key = Ed25519PrivateKey.generate()
    peer_id = identity.peer_id_of(key)
    home = NodeHome(tmp_path / "home")
    home.init()
    keyring = DmKeyring(home)
    db = Database(tmp_path / "zion.db")
    store = RecordStore(db)
    feed = EventFeed(store)
    ingest = Ingest(store, sync.ItemIndex(), feed)
    publisher = Publisher(key, ingest, window_s=0)
    content = ContentService(
        Blockstore(tmp_path / "blocks", durable=False),
        PinStore(db),
        profile="unixfs-v1-2025",
        retrieval_timeout_s=1.0,
        max_upload_bytes=UPLOAD_LIMIT,
    )
    bridge_store = BridgeStore(db)
    directory = BridgeDirectory(store, {}, True, peer_id)
    bridge_client = BridgeClient(
        directory, _no_network, _no_dial, list, timeout_s=1.0, own_peer_id=peer_id
    )
    host = BridgeHost(config.load(None).bridge, store, bridge_store, publisher, None)
    services = Services(
        node=_NodeInfo(peer_id),
        market=MarketService(store, publisher, peer_id, content.replace_pins),
        channels=ChannelService(store, publisher),
        profiles=ProfileService(store, publisher, peer_id, lambda: keyring.current_public),
        events=feed,
        content=content,
        governance=GovernanceService(connect_dao, publisher, store, DaoStore(db), account=account),
        dms=DmService(DmStore(db), store, keyring, key, _no_network, feed.notify),
        payments=PaymentsService(store, bridge_store, bridge_client, peer_id, None),
        assistant=AssistantService(store, bridge_client, peer_id, embeddings=False),
        bridges=BridgesService(directory, host),
    )
    security = GatewaySecurity(token=TOKEN, host="127.0.0.1", port=0, upload_limit=UPLOAD_LIMIT)
    app = build_app(services, security)
    async with trio.open_nursery() as nursery:
        base_url = await nursery.start(serve_gateway, app, security, "127.0.0.1", 0)
        async with httpx.AsyncClient(
            base_url=base_url, headers=AUTH, timeout=HTTP_TIMEOUT_S
        ) as http:
            yield http
        nursery.cancel_scope.cancel()
