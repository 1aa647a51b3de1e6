"""`zion run`: the composition root. Everything runs in one trio nursery.

Start order: storage, then the libp2p host and pubsub, then sync and gossip publishing, then
the gateway; the banner is printed when all of it is up. SIGINT/SIGTERM cancel the nursery and
every task stops with it; hypercorn and libp2p get short, explicit shutdown deadlines.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import trio
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from zion import __version__
from zion.contracts.errors import ChainError
from zion.gateway.app import build_app
from zion.gateway.security import GatewaySecurity
from zion.gateway.server import serve_gateway
from zion.gateway.services import Services, Unavailable
from zion.node.assistant import AssistantService
from zion.node.bitswap import Bitswap
from zion.node.bridge_client import BridgeClient, BridgeDirectory
from zion.node.bridge_host import BridgeHost, BridgesService
from zion.node.chainwatch import ChainWatcher
from zion.node.channels import ChannelService
from zion.node.clock import now_ms
from zion.node.config import ChainConfig, Config, parse_host_port
from zion.node.content import ContentService
from zion.node.discovery import PeerFinder, peer_id_in
from zion.node.dmkeys import DmKeyring
from zion.node.dms import DmService
from zion.node.errors import NodeError, first_of
from zion.node.events import EventFeed
from zion.node.floodcontrol import Admission, FloodControl
from zion.node.governance import GovernanceService, connect_dao
from zion.node.home import NodeHome
from zion.node.ingest import Ingest
from zion.node.market import MarketService
from zion.node.metrics import registry_for, serve_metrics
from zion.node.network import GossipOutcome, Network
from zion.node.payments import PaymentsService
from zion.node.profiles import ProfileService
from zion.node.publishing import Publisher
from zion.node.reachability import Reachability, ReachabilityChecker
from zion.node.relayer import Relayer
from zion.node.syncing import SyncService
from zion.node.wallet import PASSWORD_ENV, Wallets
from zion.protocols import dm, gossip, sync
from zion.protocols.cid import Cid, record_id
from zion.protocols.errors import ProtocolError
from zion.protocols.identity import peer_id_of
from zion.protocols.validation import Verdict
from zion.storage.blockstore import Blockstore
from zion.storage.bridges import BridgeStore
from zion.storage.dao import DaoStore
from zion.storage.database import Database
from zion.storage.dms import DmStore, MailboxLimits
from zion.storage.pins import PinStore
from zion.storage.records import RecordStore
from zion.storage.relays import RelayLedger

if TYPE_CHECKING:
    # Types only: the chain client (web3, eth-account) takes ~1.4 s to import (python -X
    # importtime), paid by every `zion run` though most nodes have no [chain]. It is loaded
    # when the chain is first reached (governance.connect_dao) or a wallet unlocked.
    from eth_account.signers.local import LocalAccount

    from zion.contracts.client import Dao

log = logging.getLogger("zion")

#: How often expired records are dropped.
EXPIRY_INTERVAL_S: Final = 60.0
#: How often a node that cannot be dialed checks its relay slots.
RELAY_CHECK_INTERVAL_S: Final = 10.0
#: Shutdown must finish within this, whatever a library does.
SHUTDOWN_DEADLINE_S: Final = 4.0


class NodeInfoService:
    def __init__(self, node: ZionNode) -> None:
        self._node = node

    @property
    def peer_id(self) -> str:
        return self._node.peer_id

    def addrs(self) -> list[str]:
        return self._node.network.addrs()

    def peers(self) -> list[dict[str, Any]]:
        network = self._node.network
        return [
            {
                "peer_id": peer,
                "addrs": network.peer_addrs(peer),
                "connections": network.connection_addrs(peer),
            }
            for peer in network.connected_peers()
        ]

    async def connect(self, multiaddr: str) -> str:
        try:
            peer_id = await self._node.network.connect(multiaddr)
        except ValueError as exc:
            from zion.gateway.services import InvalidInput

            raise InvalidInput(str(exc)) from None
        except trio.TooSlowError:
            raise Unavailable(f"dialing {multiaddr} timed out") from None
        except Exception as exc:  # dial failures come in many types from py-libp2p
            raise Unavailable(f"cannot connect to {multiaddr}: {exc}") from None
        return peer_id

    def status(self) -> dict[str, Any]:
        node = self._node
        stats = node.sync.stats
        return {
            "peer_id": node.peer_id,
            "version": __version__,
            "peers": len(node.network.connected_peers()),
            "connections": node.network.connection_counts(),
            "connection_limits": {
                "max_connections": node.config.network.max_connections,
                "max_inbound": node.config.network.max_inbound,
                "max_connections_per_peer": node.config.network.max_connections_per_peer,
            },
            "dht": node.config.network.dht_mode if node.network.dht is not None else "off",
            "mdns": node.config.network.mdns,
            "relay_service": node.network.relay is not None,
            "reachability": node.reachability.reachability.value,
            "relayed_addrs": sorted(node.network.relay_client.reserved.values()),
            "discovery": {
                "min_peers": node.config.network.min_peers,
                "found_by_dht": node.peer_finder.found_by_dht,
                "last_lookup_providers": node.peer_finder.last_lookup_providers,
                "found_on_lan": node.peer_finder.found_on_lan,
            },
            "records": len(node.index),
            "listings": node.store.count_listings(),
            "messages": node.store.count_messages(),
            "gossiped": node.publisher.gossiped,
            "gossip_forwarded": node.publisher.forwarded,
            "gossip_bytes_received": node.network.gossip_bytes_received,
            "gossip_dropped": node.publisher.dropped,
            "sync_sessions": stats.sessions,
            "sync_failures": stats.failures,
            "sync_stored": stats.stored,
            "sync_served": stats.served,
            "gossip_accepted": node.gossip_verdicts["accept"],
            "gossip_ignored": node.gossip_verdicts["ignore"],
            "gossip_rejected": node.gossip_verdicts["reject"],
            "gossip_over_budget": node.flood_control.over_budget_records,
            "banned_peers": len(node.network.banned()),
            "content": node.content.stats(),
            "bitswap": dataclasses.asdict(node.bitswap.stats),
            "tasks": _count_tasks(),
        }


def _count_tasks() -> int:
    """Trio tasks alive in this process: a number that grows without bound is a leak."""
    pending, count = [trio.lowlevel.current_root_task()], 0
    while pending:
        task = pending.pop()
        if task is None:
            continue
        count += 1
        for nursery in task.child_nurseries:
            pending.extend(nursery.child_tasks)
    return count


class ZionNode:
    def __init__(
        self, home: NodeHome, config: Config, connect_chain: Callable[[], Dao] | None = None
    ) -> None:
        """``connect_chain`` replaces the [chain] rpc_url connection (an embedded chain)."""
        self.home = home
        self.config = config
        self._connect_chain = connect_chain or _dao_connector(config.chain)
        key = home.load_key()
        self.peer_id = peer_id_of(key)
        self.token = home.load_token()
        self.db = Database(home.database_file)
        self.store = RecordStore(self.db)
        self.index = sync.ItemIndex(self.store.sync_items())
        self.feed = EventFeed(self.store)
        self.ingest = Ingest(self.store, self.index, self.feed)
        gossip_config = config.gossip
        self.publisher = Publisher(
            key,
            self.ingest,
            gossip_config.batch_window_ms / 1000,
            gossip_config.peer_records_per_s,
            gossip_config.peer_records_burst,
        )
        seed = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        self.network = Network(seed, config)
        self.sync = SyncService(
            self.store,
            self.index,
            self.ingest,
            self._open_sync_stream,
            config.sync.timeout_s,
            on_stored=self.publisher.forward,
        )
        self.gossip_verdicts = {verdict.value: 0 for verdict in Verdict}
        self.flood_control = FloodControl(
            config.gossip.peer_records_per_s, config.gossip.peer_records_burst
        )
        self.dm_keys = DmKeyring(home)
        self.dms = DmService(
            DmStore(self.db),
            self.store,
            self.dm_keys,
            key,
            self.network.open_stream,
            self.feed.notify,
            mailbox=_mailbox_limits(config) if config.dm.mailbox else None,
            mailbox_peers=self._mailbox_peers,
            read_receipts=config.dm.read_receipts,
        )
        self.blocks = Blockstore(home.blocks_dir)
        self.pins = PinStore(self.db)
        self.dao_store = DaoStore(self.db)
        self.relayer_account = _unlock_relayer(home, config.chain)
        self.bitswap = Bitswap(self.network, self.blocks)
        network_config = config.network
        own_id = self.network.peer_id
        self.peer_finder = PeerFinder(
            self.network,
            # Seeds share configs/bootstrap.toml: a seed would find itself in it.
            [a for a in network_config.bootstrap_peers() if peer_id_in(a) != own_id],
            network_config.min_peers,
            network_config.max_bootstrap_dials,
        )
        self.network.on_lan_peer = self.peer_finder.lan_peer_seen
        self.reachability = ReachabilityChecker(self.network)
        self.network.on_disconnect.append(self.bitswap.forget_peer)
        self.content = ContentService(
            self.blocks,
            self.pins,
            profile=config.ipfs.profile,
            retrieval_timeout_s=config.ipfs.retrieval_timeout_s,
            max_upload_bytes=config.ipfs.max_upload_bytes,
            max_storage_bytes=config.ipfs.max_storage_bytes,
            fetch=self.bitswap.fetch,
            prefetch=self.bitswap.prefetch,
        )
        self.bridge_store = BridgeStore(self.db)
        self.bridge_host = BridgeHost(
            config.bridge,
            self.store,
            self.bridge_store,
            self.publisher,
            self._balance_of if self._connect_chain is not None else None,
        )
        directory = BridgeDirectory(
            self.store,
            {"stripe": config.bridges.stripe, "ai": config.bridges.ai},
            config.bridges.discover,
            self.peer_id,
        )
        self.bridge_client = BridgeClient(
            directory,
            self.network.open_stream,
            self.network.connect,
            self.network.connected_peers,
            config.bridges.timeout_s,
            self.peer_id,
            local={server.service: server.answer_own for server in self.bridge_host.servers},
        )
        self._dao: Dao | None = None
        payments = PaymentsService(
            self.store, self.bridge_store, self.bridge_client, self.peer_id, self.bridge_host.stripe
        )
        self.services = Services(
            node=NodeInfoService(self),
            market=MarketService(
                self.store, self.publisher, self.peer_id, self.content.replace_pins
            ),
            channels=ChannelService(self.store, self.publisher),
            profiles=ProfileService(
                self.store,
                self.publisher,
                self.peer_id,
                lambda: self.dm_keys.current_public,
                payments.payment_bridges,
            ),
            events=self.feed,
            content=self.content,
            dms=self.dms,
            governance=GovernanceService(
                self._connect_chain,
                self.publisher,
                self.store,
                self.dao_store,
                relayer=config.chain.relayer,
                account=self.relayer_account,
            ),
            payments=payments,
            assistant=AssistantService(
                self.store, self.bridge_client, self.peer_id, embeddings=config.bridges.embeddings
            ),
            bridges=BridgesService(directory, self.bridge_host),
        )
        self.security = GatewaySecurity(
            token=self.token,
            host=config.gateway.host,
            port=config.gateway.port,
            extra_hosts=tuple(config.gateway.allowed_hosts),
            extra_origins=tuple(config.gateway.allowed_origins),
            upload_limit=config.ipfs.max_upload_bytes,
        )

    async def _republish_profile(self) -> None:
        """A profile written before this node had its current direct-message key (an older
        version, a lost keyring) or its current payment bridges (a changed config) is
        republished, so members can reach it and pay it."""
        if self.services.profiles.outdated():
            log.info("publishing this node's current key and payment bridges in its profile")
            await self.services.profiles.republish()

    async def _balance_of(self, wallet: str) -> int:
        """A wallet's DAO token balance, for bridges open to token holders."""
        if self._dao is None:
            assert self._connect_chain is not None
            self._dao = await trio.to_thread.run_sync(self._connect_chain)
        return await trio.to_thread.run_sync(self._dao.balance, wallet)

    def _mailbox_peers(self) -> list[str]:
        """Connected peers that are mailboxes, or may be (identify has not told yet: asking
        one that is not costs a failed protocol negotiation)."""
        return [
            peer
            for peer in self.network.connected_peers()
            if self.network.may_speak(peer, dm.MAILBOX_PROTOCOL_ID)
        ]

    async def _open_sync_stream(self, peer_id: str) -> Any:
        return await self.network.open_stream(peer_id, sync.PROTOCOL_ID)

    async def on_gossip(self, topic: str, sender: str, origin: str, data: bytes) -> GossipOutcome:
        try:
            blocks = gossip.decode_batch(data)
        except ProtocolError as exc:
            return self._gossip_verdict(Verdict.REJECT, sender, exc.reason)
        # Records we hold already (the same bytes: their signatures were checked) cost
        # nothing, neither budget nor verification; copies arrive all the time.
        ids = [record_id(block) for block in blocks]
        known = self.store.known(ids)
        fresh = [block for block, id_ in zip(blocks, ids, strict=True) if id_ not in known]
        admission = self.flood_control.admit(sender, origin, len(fresh), trio.current_time())
        if admission is not Admission.ADMIT:
            cut_off = admission is Admission.CUT_OFF
            return GossipOutcome(forward=False, cut_off=cut_off, unseen=not cut_off)
        if not fresh:
            return self._gossip_verdict(Verdict.IGNORE, sender, "all known")
        report = await self.ingest.receive(fresh, reject_all_on_invalid=True)
        return self._gossip_verdict(report.verdict, sender, report.reject_reason)

    def _gossip_verdict(self, verdict: Verdict, sender: str, reason: str) -> GossipOutcome:
        self.gossip_verdicts[verdict.value] += 1
        if verdict is Verdict.REJECT:
            log.info("rejected gossip from %s: %s", sender, reason)
            return GossipOutcome(forward=False, blame=True)
        return GossipOutcome(forward=verdict is Verdict.ACCEPT)

    async def run(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        # Handlers first: identify tells every peer we connect to which protocols we speak.
        self.network.set_stream_handler(sync.PROTOCOL_ID, self.sync.serve)
        self.network.set_stream_handler(dm.PROTOCOL_ID, self.dms.serve)
        if self.config.dm.mailbox:
            self.network.set_stream_handler(dm.MAILBOX_PROTOCOL_ID, self.dms.serve_mailbox)
        for server in self.bridge_host.servers:
            self.network.set_stream_handler(server.protocol, server.serve)
        self.bitswap.register()
        try:
            await self._run(task_status)
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(1):
                await self.bridge_host.aclose()

    async def _run(self, task_status: trio.TaskStatus[str]) -> None:
        async with trio.open_nursery() as nursery, self.network.running(self.on_gossip):
            await nursery.start(self.bitswap.run)
            if self._connect_chain is not None:
                nursery.start_soon(self._watch_chain)
            if self.relayer_account is not None:
                nursery.start_soon(self._relay_ballots)
            self.content.announce = lambda cid: nursery.start_soon(self._provide, cid)
            nursery.start_soon(self.publisher.run, self.network.publish)
            nursery.start_soon(self.dms.run)
            nursery.start_soon(self._republish_profile)
            nursery.start_soon(self.dms.fetch_periodically)
            nursery.start_soon(self._sync_on_connect, nursery)
            nursery.start_soon(self._sync_periodically, nursery)
            nursery.start_soon(self._expire_periodically)
            nursery.start_soon(self.peer_finder.run)
            nursery.start_soon(self.reachability.run)
            nursery.start_soon(self._stay_reachable)
            nursery.start_soon(self.bridge_host.announce_periodically, self.network.addrs)
            gateway = self.config.gateway
            try:
                base_url = await nursery.start(
                    serve_gateway,
                    build_app(self.services, self.security, ui=gateway.ui),
                    self.security,
                    gateway.host,
                    gateway.port,
                )
                if self.config.metrics.listen:
                    host, port = parse_host_port(self.config.metrics.listen)
                    registry = registry_for(self.services.node.status)
                    metrics_url = await nursery.start(serve_metrics, registry, host, port)
                    self.home.metrics_file.write_text(metrics_url + "\n", "utf-8")
                    log.info("metrics at %s/metrics", metrics_url)
            except (OSError, BaseExceptionGroup) as exc:
                # hypercorn binds inside its own nursery: the error may come wrapped.
                if (os_error := first_of(exc, OSError)) is None:
                    raise
                reason = os_error.strerror or os_error
                raise NodeError(f"cannot serve the gateway on {gateway.listen}: {reason}") from None
            self.home.gateway_file.write_text(base_url + "\n", "utf-8")
            task_status.started(base_url)
            await trio.sleep_forever()

    async def _connect_dao(self, who: str) -> Dao:
        """The DAO's chain client, retrying while the chain is down."""
        assert self._connect_chain is not None
        while True:
            try:
                return await trio.to_thread.run_sync(self._connect_chain)
            except ChainError as exc:
                log.warning("%s cannot reach the chain, retrying in 10 s: %s", who, exc)
                await trio.sleep(10)

    async def _relay_ballots(self) -> None:
        assert self.relayer_account is not None
        dao = await self._connect_dao("relayer")
        ledger = RelayLedger(self.db)
        await Relayer(dao, self.relayer_account, self.store, ledger).run()

    async def _watch_chain(self) -> None:
        dao = await self._connect_dao("chain watcher")
        confirmations = self.config.chain.confirmations
        await ChainWatcher(dao, self.dao_store, confirmations, now_ms, self.feed.notify).run()

    async def _provide(self, cid: Cid) -> None:
        try:
            await self.network.provide(cid.multihash)
        except Exception as exc:
            log.debug("cannot announce %s in the DHT: %s", cid, exc)

    async def _stay_reachable(self) -> None:
        """While AutoNAT says others cannot dial us, be reachable through relays, and
        advertise again in the DHT when the relayed addresses change."""
        while True:
            private = self.reachability.reachability is Reachability.PRIVATE
            if await self.network.keep_reachable(private):
                self.peer_finder.advertise_soon()
            await trio.sleep(RELAY_CHECK_INTERVAL_S)

    async def _sync_on_connect(self, nursery: trio.Nursery) -> None:
        async for peer_id in self.network.connections:
            nursery.start_soon(self.sync.pull, peer_id)
            self.dms.peer_connected(peer_id)

    async def _sync_periodically(self, nursery: trio.Nursery) -> None:
        while True:
            await trio.sleep(self.config.sync.interval_s)
            for peer_id in self.network.connected_peers():
                if self.network.may_speak(peer_id, sync.PROTOCOL_ID):
                    nursery.start_soon(self.sync.pull, peer_id)

    async def _expire_periodically(self) -> None:
        while True:
            dropped = await self.ingest.expire()
            if dropped:
                log.info("dropped %d expired records", dropped)
            await trio.sleep(EXPIRY_INTERVAL_S)

    def close(self) -> None:
        self.home.gateway_file.unlink(missing_ok=True)
        self.home.metrics_file.unlink(missing_ok=True)
        self.db.close()


def _unlock_relayer(home: NodeHome, chain: ChainConfig) -> LocalAccount | None:
    """The relayer's wallet, unlocked at start so that a wrong password stops the node at once
    instead of failing later in the background."""
    if not chain.relayer:
        return None
    if not chain.deployed:
        raise NodeError("[chain] relayer = true needs rpc_url and the contract addresses")
    if chain.relayer_password_file:
        try:
            password = Path(chain.relayer_password_file).read_text().rstrip("\r\n")
        except OSError as exc:
            raise NodeError(f"chain.relayer_password_file: {exc.strerror}") from None
    else:
        password = os.environ.get(PASSWORD_ENV, "")
        if not password:
            raise NodeError(
                f"the relayer's wallet needs a password: set {PASSWORD_ENV}"
                " or [chain] relayer_password_file"
            )
    return Wallets(home).unlock(password, chain.relayer_wallet or None)


def _mailbox_limits(config: Config) -> MailboxLimits:
    return MailboxLimits(
        per_recipient=config.dm.mailbox_per_recipient,
        max_age_ms=config.dm.mailbox_days * 24 * 3600 * 1000,
        max_bytes=config.dm.mailbox_max_bytes,
    )


def _dao_connector(chain: ChainConfig) -> Callable[[], Dao] | None:
    """How to reach the configured DAO, made lazily: a chain that is down does not stop the
    node from starting."""
    return functools.partial(connect_dao, chain) if chain.deployed else None


def banner(node: ZionNode, base_url: str) -> str:
    lines = [
        f"Zion node {__version__}",
        f"peer ID:  {node.peer_id}",
        "listening:",
        *(f"  {addr}" for addr in node.network.addrs()),
        f"gateway:  {base_url}",
        f"login:    {base_url}/login?token={node.token}",
        f"home:     {node.home.path}",
    ]
    if node.security.remote:
        lines.append(
            "warning:  the gateway is reachable from other machines ([gateway] allow_remote):"
            " every request needs the token; put TLS in front of it"
        )
    return "\n".join(lines)


async def _main(node: ZionNode) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            base_url = await nursery.start(node.run)
            print(banner(node, base_url), flush=True)
            async for signum in signals:
                log.info("received %s, stopping", signal.Signals(signum).name)
                nursery.cancel_scope.deadline = trio.current_time() + SHUTDOWN_DEADLINE_S
                nursery.cancel_scope.cancel()
                break


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line, for log collectors ([logging] format = "json"). Hand-written:
    five fields and json.dumps need no library."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str, fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        formatter: logging.Formatter = JsonLogFormatter()
        formatter.converter = time.gmtime
        handler.setFormatter(formatter)
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), handlers=[handler])
    # py-libp2p logs routine peer churn (a peer without our sync protocol, a DHT query to a
    # client) as errors with tracebacks; keep the node's own voice clear unless debugging.
    if level.lower() != "debug":
        for noisy in ("libp2p", "multiaddr", "hypercorn", "async_service"):
            logging.getLogger(noisy).setLevel(logging.CRITICAL)


def run_daemon(
    home: NodeHome,
    overrides: dict[str, dict[str, object]],
    log_level: str,
    profile: str = "member",
) -> None:
    if home.init():
        print(f"initialised a new node home at {home.path}", flush=True)
    config = home.load_config(overrides, profile)
    configure_logging(log_level, config.logging.format)
    node = ZionNode(home, config)
    try:
        trio.run(_main, node)
    except KeyboardInterrupt:
        pass
    except BaseException as exc:
        # Tasks fail inside nurseries, so errors arrive wrapped in exception groups.
        if (found := first_of(exc, NodeError)) is not None:
            raise found from None
        if (os_error := first_of(exc, OSError)) is not None:
            raise NodeError(f"cannot start: {os_error.strerror or os_error}") from None
        raise
    finally:
        node.close()
    print("stopped", flush=True)
