"""Paying for listings through a Stripe bridge, and the orders this member is part of.

An order is a payment this member started (kept in its database until a receipt arrives) or a
receipt naming this member as buyer or seller. Receipts are records signed by the bridge that
took the payment, gossiped like any other; a refund is a newer version of the same receipt.
"""

from __future__ import annotations

from contextlib import aclosing
from typing import Any, Final

from zion.gateway.services import Conflict, InvalidInput, NotFound
from zion.node.bridges import BridgeClient, BridgeError, as_service_error
from zion.node.clock import now_ms
from zion.node.stripe_bridge import StripeBridge
from zion.protocols import bridge
from zion.protocols.records import ListingBody, ReceiptBody, Record
from zion.storage.bridges import BridgeStore, Order
from zion.storage.records import RecordStore

#: Receipts read to list this member's orders (newest first).
MAX_RECEIPTS_READ: Final = 10_000


class PaymentsService:
    def __init__(
        self,
        records: RecordStore,
        store: BridgeStore,
        client: BridgeClient,
        peer_id: str,
        own_bridge: StripeBridge | None,
    ) -> None:
        self._records = records
        self._store = store
        self._client = client
        self._peer_id = peer_id
        self._own_bridge = own_bridge

    def _listing(self, listing: str) -> Record:
        record = self._records.get(listing) if listing.startswith("b") else None
        if record is None:
            record = self._records.listing(listing, prefer_author=self._peer_id)
        if record is None or not isinstance(record.body, ListingBody):
            raise NotFound(f"no listing {listing[:80]!r}")
        return record

    async def pay(self, listing: str) -> dict[str, Any]:
        """Ask a Stripe bridge for a PaymentIntent for ``listing`` (a subject or record ID) at
        the price this node has for it. BridgeError says why not."""
        record = self._listing(listing)
        body = record.body
        assert isinstance(body, ListingBody)
        if record.author == self._peer_id:
            raise InvalidInput("this is your own listing")
        if body.price.amount == 0:
            raise InvalidInput("this listing has no price to pay")
        request = bridge.Pay(
            listing=record.id,
            amount=body.price.amount,
            currency=body.price.currency,
            record=record.block,
        )
        try:
            async with aclosing(self._client.call("stripe", request)) as replies:
                async for peer, reply in replies:
                    if isinstance(reply, bridge.PaymentCreated):
                        return self._started(record, peer, reply)
        except BridgeError as exc:
            raise as_service_error(exc) from None
        raise InvalidInput("the bridge answered without a payment")

    def _started(self, record: Record, peer: str, reply: bridge.PaymentCreated) -> dict[str, Any]:
        order = Order(
            payment_intent=reply.payment_intent,
            listing=record.id,
            bridge=peer,
            seller=record.author,
            amount=reply.amount,
            currency=reply.currency,
            client_secret=reply.client_secret,
            created=now_ms(),
        )
        self._store.add_order(order)
        return {
            **self._order_json(order, None),
            "client_secret": reply.client_secret,
            "publishable_key": reply.publishable_key,
            "stripe_status": reply.status,
        }

    def orders(self) -> list[dict[str, Any]]:
        receipts = self._receipts()
        out = []
        for order in self._store.orders():
            out.append(self._order_json(order, receipts.pop(order.payment_intent, None)))
        for receipt in receipts.values():
            out.append(self._receipt_json(receipt))
        out.sort(key=lambda item: item["created"], reverse=True)
        return out

    def order(self, payment_intent: str) -> dict[str, Any]:
        for item in self.orders():
            if item["payment_intent"] == payment_intent:
                return item
        raise NotFound(f"no order {payment_intent[:80]!r}")

    async def refund(self, payment_intent: str, amount: int | None) -> dict[str, Any]:
        """Only the bridge that took a payment can refund it (it holds the Stripe key)."""
        if self._own_bridge is None:
            raise Conflict("this node runs no Stripe bridge: ask the bridge's operator")
        try:
            record = await self._own_bridge.refund(payment_intent, amount)
        except LookupError as exc:
            raise NotFound(str(exc)) from None
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        except RuntimeError as exc:
            raise Conflict(str(exc)) from None
        return self._receipt_json(record)

    def _receipts(self) -> dict[str, Record]:
        """Receipts naming this member (or, on a bridge, every one it signed)."""
        found: dict[str, Record] = {}
        for record in self._records.of_kind("receipt", MAX_RECEIPTS_READ):
            body = record.body
            if not isinstance(body, ReceiptBody):
                continue
            if self._peer_id in (body.buyer, body.seller, record.author):
                found.setdefault(body.payment_intent, record)
        return found

    def _listing_fields(self, listing_cid: str) -> dict[str, Any]:
        """The listing as the API names it (its subject), if this node has that version."""
        record = self._records.get(listing_cid)
        known = record is not None and isinstance(record.body, ListingBody)
        return {
            "listing": record.subject if record is not None and known else None,
            "listing_cid": listing_cid,
            "title": record.body.title
            if record is not None and isinstance(record.body, ListingBody)
            else None,
        }

    def _order_json(self, order: Order, receipt: Record | None) -> dict[str, Any]:
        if receipt is not None:
            return self._receipt_json(receipt)
        return {
            "payment_intent": order.payment_intent,
            **self._listing_fields(order.listing),
            "role": "buyer",
            "buyer": self._peer_id,
            "seller": order.seller,
            "amount": order.amount,
            "currency": order.currency,
            "status": "awaiting-payment",
            "refunded": 0,
            "bridge": order.bridge,
            "receipt": None,
            "created": order.created,
        }

    def _receipt_json(self, record: Record) -> dict[str, Any]:
        body = record.body
        assert isinstance(body, ReceiptBody)
        role = (
            "buyer"
            if body.buyer == self._peer_id
            else "seller"
            if body.seller == self._peer_id
            else "bridge"
        )
        return {
            "payment_intent": body.payment_intent,
            **self._listing_fields(body.listing),
            "role": role,
            "buyer": body.buyer,
            "seller": body.seller,
            "amount": body.amount,
            "currency": body.currency,
            "status": body.status,
            "refunded": body.refunded,
            "bridge": record.author,
            "receipt": record.id,
            "created": record.created,
        }
