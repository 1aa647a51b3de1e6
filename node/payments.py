"""Paying for listings through a Stripe bridge, and the orders this member is part of.

Who is believed about a payment:

- A seller names the Stripe bridges it takes payments through, in its profile
  (``payment_bridges``, from its ``[bridges] stripe`` config). A buyer pays only through one of
  those; if the seller names none, only through a bridge the buyer's own config names. A
  bridge that merely announced itself never gets a buyer's money.
- A buyer believes only the receipt signed by the bridge it paid through, for that payment,
  naming it as buyer, for the listing and amount it asked.
- A seller believes only receipts signed by its own payment bridges (or by itself).

Anyone can sign a ``receipt`` record; these rules are what make one mean "paid".
"""

from __future__ import annotations

from contextlib import aclosing
from typing import Any, Final

from zion.gateway.services import Conflict, InvalidInput, NotFound
from zion.node.bridge_client import BridgeClient
from zion.node.bridges import BridgeError, as_service_error
from zion.node.clock import now_ms
from zion.node.stripe_bridge import StripeBridge
from zion.protocols import bridge
from zion.protocols.records import PROFILE_SUBJECT, ListingBody, ProfileBody, ReceiptBody, Record
from zion.storage.bridges import BridgeStore, Order
from zion.storage.records import RecordStore

#: Receipts read per trusted bridge to list a seller's sales (newest first).
MAX_RECEIPTS_PER_BRIDGE: Final = 1000


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

    def payment_bridges(self) -> list[str]:
        """The Stripe bridges this member takes payments through (published in its profile)."""
        bridges = self._client.directory.configured("stripe")
        if self._own_bridge is not None:
            bridges = [self._peer_id, *bridges]
        return list(dict.fromkeys(bridges))

    def _listing(self, listing: str) -> Record:
        record = self._records.get(listing) if listing.startswith("b") else None
        if record is None:
            record = self._records.listing(listing, prefer_author=self._peer_id)
        if record is None or not isinstance(record.body, ListingBody):
            raise NotFound(f"no listing {listing[:80]!r}")
        return record

    def _accepted_by(self, seller: str) -> list[str]:
        profile = self._records.head(seller, PROFILE_SUBJECT)
        if profile is not None and isinstance(profile.body, ProfileBody):
            return list(profile.body.payment_bridges)
        return []

    async def pay(self, listing: str) -> dict[str, Any]:
        """Ask a Stripe bridge the seller takes payments through for a PaymentIntent for
        ``listing`` (a listing ID or record ID) at the price this node has for it."""
        record = self._listing(listing)
        body = record.body
        assert isinstance(body, ListingBody)
        if record.author == self._peer_id:
            raise InvalidInput("this is your own listing")
        if body.price.amount == 0:
            raise InvalidInput("this listing has no price to pay")
        accepted = self._accepted_by(record.author)
        request = bridge.Pay(
            listing=record.id,
            amount=body.price.amount,
            currency=body.price.currency,
            record=record.block,
        )
        calling = self._client.call(
            "stripe", request, among=accepted or None, configured_only=not accepted
        )
        try:
            async with aclosing(calling) as replies:
                async for peer, reply in replies:
                    if isinstance(reply, bridge.PaymentCreated):
                        return self._started(record, body, peer, reply)
        except BridgeError as exc:
            if exc.reason == "no-bridge":
                exc.message = (
                    "none of the seller's payment bridges is known to this node"
                    if accepted
                    else "the seller names no payment bridge, and [bridges] stripe names none"
                )
            raise as_service_error(exc) from None
        raise InvalidInput("the bridge answered without a payment")

    def _started(
        self, record: Record, body: ListingBody, peer: str, reply: bridge.PaymentCreated
    ) -> dict[str, Any]:
        if (reply.amount, reply.currency) != (body.price.amount, body.price.currency):
            raise as_service_error(
                BridgeError(
                    bridge.PRICE_MISMATCH,
                    "the bridge asked for another amount than the price",
                    peer,
                )
            )
        order = Order(
            payment_intent=reply.payment_intent,
            listing=record.id,
            listing_subject=record.subject,
            bridge=peer,
            seller=record.author,
            amount=reply.amount,
            currency=reply.currency,
            client_secret=reply.client_secret,
            created=now_ms(),
        )
        self._store.add_order(order)
        return {
            **self._order_json(order),
            "publishable_key": reply.publishable_key,
            "stripe_status": reply.status,
        }

    def orders(self) -> list[dict[str, Any]]:
        out = [self._order_json(order) for order in self._store.orders()]
        bought = {item["payment_intent"] for item in out}
        for receipt in self._trusted_receipts():
            body = receipt.body
            assert isinstance(body, ReceiptBody)
            if body.payment_intent not in bought:
                out.append(self._receipt_json(receipt))
        out.sort(key=lambda item: item["created"], reverse=True)
        return out

    def order(self, payment_intent: str) -> dict[str, Any]:
        order = self._store.order(payment_intent)
        if order is not None:
            return self._order_json(order)
        for receipt in self._trusted_receipts():
            if receipt.subject == payment_intent:
                return self._receipt_json(receipt)
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

    def _trusted_receipts(self) -> list[Record]:
        """Receipts of sales (this member as seller) from its own payment bridges, and those
        this node signed as a bridge."""
        found: list[Record] = []
        for author in self.payment_bridges():
            for record in self._records.of_kind_by("receipt", author, MAX_RECEIPTS_PER_BRIDGE):
                body = record.body
                if isinstance(body, ReceiptBody) and self._peer_id in (body.seller, author):
                    found.append(record)
        return found

    def _receipt_for(self, order: Order) -> Record | None:
        """The receipt for a payment this member made: from the bridge it paid through, for
        what it asked to pay."""
        record = self._records.head(order.bridge, order.payment_intent)
        body = record.body if record is not None else None
        if (
            isinstance(body, ReceiptBody)
            and body.buyer == self._peer_id
            and body.listing == order.listing
            and (body.amount, body.currency) == (order.amount, order.currency)
        ):
            return record
        return None

    def _listing_fields(self, subject: str, seller: str, listing_cid: str) -> dict[str, Any]:
        """The listing as the API names it (its ID), and its title if this node has it."""
        current = self._records.listing(subject, prefer_author=seller)
        title = None
        if current is not None and current.author == seller:
            assert isinstance(current.body, ListingBody)
            title = current.body.title
        return {"listing": subject, "listing_cid": listing_cid, "title": title}

    def _order_json(self, order: Order) -> dict[str, Any]:
        receipt = self._receipt_for(order)
        if receipt is not None:
            return self._receipt_json(receipt)
        return {
            "payment_intent": order.payment_intent,
            **self._listing_fields(order.listing_subject, order.seller, order.listing),
            "role": "buyer",
            "buyer": self._peer_id,
            "seller": order.seller,
            "amount": order.amount,
            "currency": order.currency,
            "status": "awaiting-payment",
            "refunded": 0,
            "bridge": order.bridge,
            "receipt": None,
            "client_secret": order.client_secret,
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
            **self._listing_fields(body.listing_subject, body.seller, body.listing),
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
