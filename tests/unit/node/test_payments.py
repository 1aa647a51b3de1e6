"""Who is believed about a payment: a receipt counts only from the bridge the buyer paid
through (for the buyer) or from the seller's own payment bridges (for the seller), whoever
else signs one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.conftest import make_listing
from zion.node.bridge_client import BridgeClient, BridgeDirectory
from zion.node.clock import now_ms
from zion.node.payments import PaymentsService
from zion.protocols import identity, records
from zion.storage.bridges import BridgeStore, Order
from zion.storage.database import Database
from zion.storage.records import RecordStore

SELLER = Ed25519PrivateKey.from_private_bytes(bytes([21] * 32))
BUYER = Ed25519PrivateKey.from_private_bytes(bytes([22] * 32))
BRIDGE = Ed25519PrivateKey.from_private_bytes(bytes([23] * 32))
FORGER = Ed25519PrivateKey.from_private_bytes(bytes([24] * 32))


def peer(key: Ed25519PrivateKey) -> str:
    return identity.peer_id_of(key)


def receipt(
    signer: Ed25519PrivateKey, listing: records.Record, pi: str, **changes: Any
) -> records.Record:
    body = {
        "listing": listing.id,
        "listing_subject": listing.subject,
        "seller": listing.author,
        "buyer": peer(BUYER),
        "amount": 12000,
        "currency": "EUR",
        "payment_intent": pi,
        "status": "paid",
        **changes,
    }
    return records.sign_record(
        signer,
        kind="receipt",
        subject=pi,
        seq=1,
        created=now_ms(),
        body=records.ReceiptBody(**body),
    )


async def _nowhere(*_: Any) -> Any:
    raise ConnectionError("no network in this test")


def service(tmp_path: Path, me: Ed25519PrivateKey, stripe: list[str]) -> PaymentsService:
    db = Database(tmp_path / f"{peer(me)[-6:]}.db")
    store = RecordStore(db)
    directory = BridgeDirectory(store, {"stripe": stripe}, True, peer(me))
    client = BridgeClient(directory, _nowhere, _nowhere, list, 1.0, peer(me))
    return PaymentsService(store, BridgeStore(db), client, peer(me), None)


@pytest.fixture
def listing() -> records.Record:
    return make_listing(SELLER, created=now_ms())


def paid_through_bridge(buyer: PaymentsService, listing: records.Record) -> None:
    """The buyer's node started paying for ``listing`` through BRIDGE."""
    order = Order(
        payment_intent="pi_real",
        listing=listing.id,
        listing_subject=listing.subject,
        bridge=peer(BRIDGE),
        seller=peer(SELLER),
        amount=12000,
        currency="EUR",
        client_secret="pi_real_secret_x",
        created=now_ms(),
    )
    buyer._store.add_order(order)


def statuses(payments: PaymentsService) -> dict[str, str]:
    return {item["payment_intent"]: item["status"] for item in payments.orders()}


def test_a_buyer_believes_only_the_bridge_it_paid_through(
    tmp_path: Path, listing: records.Record
) -> None:
    buyer = service(tmp_path, BUYER, [])
    paid_through_bridge(buyer, listing)
    store = buyer._records
    store.apply(listing, now_ms())
    store.apply(receipt(FORGER, listing, "pi_real"), now_ms())
    assert statuses(buyer) == {"pi_real": "awaiting-payment"}
    store.apply(receipt(BRIDGE, listing, "pi_real", amount=1), now_ms())  # not what was asked
    assert statuses(buyer) == {"pi_real": "awaiting-payment"}


def test_a_buyer_sees_the_real_receipt(tmp_path: Path, listing: records.Record) -> None:
    buyer = service(tmp_path, BUYER, [])
    paid_through_bridge(buyer, listing)
    buyer._records.apply(receipt(BRIDGE, listing, "pi_real"), now_ms())
    (order,) = buyer.orders()
    assert (order["status"], order["bridge"], order["role"]) == ("paid", peer(BRIDGE), "buyer")


def test_a_seller_believes_only_its_payment_bridges(
    tmp_path: Path, listing: records.Record
) -> None:
    bridge_addr = f"/ip4/127.0.0.1/tcp/1/p2p/{peer(BRIDGE)}"
    seller = service(tmp_path, SELLER, [bridge_addr])
    assert seller.payment_bridges() == [peer(BRIDGE)]
    seller._records.apply(receipt(FORGER, listing, "pi_forged"), now_ms())
    assert statuses(seller) == {}
    with pytest.raises(Exception, match="no order"):
        seller.order("pi_forged")
    seller._records.apply(receipt(BRIDGE, listing, "pi_sold"), now_ms())
    assert statuses(seller) == {"pi_sold": "paid"}
    assert seller.order("pi_sold")["role"] == "seller"
