"""The Stripe bridge: PaymentIntents for verified listings, and receipts from Stripe's webhooks.

A buyer's node sends ``pay`` with the listing's ID and the price its member saw. The bridge
checks the listing itself (the record in its own store, or the signed record the buyer sent,
whose signature it verifies) and that it is current: not expired, not deleted, the price and
currency those of its newest version. Only then does it ask Stripe for a PaymentIntent, with
an idempotency key (a retried request gets the same PaymentIntent) and the listing, buyer and
seller in its metadata.

Stripe tells the bridge that a payment succeeded with a webhook: a POST signed with the
endpoint's secret (``Stripe-Signature``). The signature and its age are checked by Stripe's
own library; each event is handled once (its ID is remembered), and a request that repeats a
delivery seen before (same event, same signature time) is refused as a replay. A succeeded
payment becomes a ``receipt`` record signed by the bridge; a refund (Stripe's
``charge.refunded`` webhook, or the operator's refund through the API) a new version of it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, Final

import stripe
import trio

from zion.node.clock import now_ms
from zion.node.config import StripeBridgeConfig
from zion.node.publishing import Publisher
from zion.protocols import bridge, records
from zion.protocols.records import ListingBody, ReceiptBody, Record, TombstoneBody
from zion.protocols.validation import Verdict
from zion.storage.bridges import BridgeStore, Payment
from zion.storage.records import RecordStore

log = logging.getLogger(__name__)

#: Stripe's answer must come within this; the SDK retries this many times on network errors.
STRIPE_TIMEOUT_S: Final = 30.0
STRIPE_RETRIES: Final = 2
#: Largest webhook body taken (Stripe's events are a few KiB).
MAX_WEBHOOK_BYTES: Final = 256 * 1024
#: The webhook events the bridge acts on; others are acknowledged and ignored.
SUCCEEDED: Final = "payment_intent.succeeded"
REFUNDED: Final = "charge.refunded"

#: Metadata keys on the PaymentIntent (Stripe's dashboard shows them to the operator).
META_LISTING: Final = "zion_listing"
META_BUYER: Final = "zion_buyer"
META_SELLER: Final = "zion_seller"


class WebhookRefused(Exception):
    """A webhook request not acted on: ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class WebhookOutcome:
    event: str
    #: What was done: "receipt" (published), "refund" (published) or "ignored".
    action: str
    receipt: str | None = None
    #: Whether the event is settled for good (remembered, so never acted on again). An event
    #: for a payment not known yet, or a refund before its payment, may matter later.
    final: bool = True


class StripeBridge:
    def __init__(
        self,
        config: StripeBridgeConfig,
        secret_key: str,
        webhook_secret: str,
        records_store: RecordStore,
        store: BridgeStore,
        publisher: Publisher,
    ) -> None:
        self._config = config
        self._webhook_secret = webhook_secret
        self._records = records_store
        self._store = store
        self._publisher = publisher
        self._peer_id = publisher.author
        base = {"api": config.api_base} if config.api_base else None
        self._http = stripe.HTTPXClient(timeout=STRIPE_TIMEOUT_S)
        self._client = stripe.StripeClient(
            secret_key,
            base_addresses=base,  # type: ignore[arg-type]
            http_client=self._http,
            max_network_retries=STRIPE_RETRIES,
        )
        self._lock = trio.Lock()

    def offer_details(self) -> dict[str, Any]:
        return {
            "currencies": list(self._config.currencies),
            "publishable_key": self._config.publishable_key,
        }

    # --- pay -------------------------------------------------------------------------------

    async def handle(self, buyer: str, request: bridge.Request) -> AsyncGenerator[bridge.Reply]:
        assert isinstance(request, bridge.Pay)
        yield await self.pay(buyer, request)

    async def pay(self, buyer: str, request: bridge.Pay) -> bridge.Reply:
        checked = self._check_listing(buyer, request)
        if isinstance(checked, bridge.Error):
            log.info(
                "stripe bridge: refused to charge %s for %s: %s",
                buyer,
                request.listing,
                checked.message,
            )
            return checked
        listing, body = checked
        key = idempotency_key(listing.id, buyer, body.price.amount, body.price.currency)
        try:
            intent = await self._client.v1.payment_intents.create_async(
                params={
                    "amount": body.price.amount,
                    "currency": body.price.currency.lower(),
                    "metadata": {
                        META_LISTING: listing.id,
                        META_BUYER: buyer,
                        META_SELLER: listing.author,
                    },
                },
                options={"idempotency_key": key},
            )
        except stripe.StripeError as exc:
            # Stripe's own text stays in the operator's log: it may describe the account.
            log.warning("stripe bridge: Stripe refused a PaymentIntent: %s", exc)
            code = f" ({exc.code})" if exc.code else ""
            return bridge.error(bridge.UPSTREAM_FAILED, f"Stripe did not take the payment{code}")
        self._store.add_payment(
            Payment(
                payment_intent=intent.id,
                listing=listing.id,
                listing_subject=listing.subject,
                buyer=buyer,
                seller=listing.author,
                amount=body.price.amount,
                currency=body.price.currency,
                created=now_ms(),
                status="created",
                refunded=0,
                receipt_seq=0,
            )
        )
        return bridge.PaymentCreated(
            payment_intent=intent.id,
            client_secret=intent.client_secret or "",
            amount=body.price.amount,
            currency=body.price.currency,
            status=intent.status,
            publishable_key=self._config.publishable_key,
        )

    def _check_listing(
        self, buyer: str, request: bridge.Pay
    ) -> tuple[Record, ListingBody] | bridge.Error:
        now = now_ms()
        listing = self._records.get(request.listing)
        if listing is None and request.record is not None:
            verdict, record = records.validate_record(request.record, now)
            if verdict.reason == "bad-signature":
                return bridge.error(
                    bridge.BAD_SIGNATURE, "the listing's signature does not match its content"
                )
            if verdict.reason == "expired":
                return bridge.error(bridge.EXPIRED, "the listing has expired")
            if verdict.verdict is not Verdict.ACCEPT or record is None:
                return bridge.error(
                    bridge.BAD_REQUEST, f"the listing record is not valid: {verdict.reason}"
                )
            if record.id != request.listing:
                return bridge.error(bridge.BAD_REQUEST, "the record sent is not that listing")
            listing = record
        if listing is None:
            return bridge.error(bridge.UNKNOWN_LISTING, f"listing {request.listing} is not known")
        if not isinstance(listing.body, ListingBody):
            return bridge.error(bridge.BAD_REQUEST, f"{request.listing} is not a listing")
        head = self._records.head(listing.author, listing.subject)
        if head is not None and isinstance(head.body, TombstoneBody) and head.seq > listing.seq:
            return bridge.error(bridge.DELETED, "the seller deleted this listing")
        if head is not None and head.seq > listing.seq and isinstance(head.body, ListingBody):
            listing = head  # the seller changed it: the current version's price applies
        body = listing.body
        assert isinstance(body, ListingBody)
        if listing.expires is not None and listing.expires <= now:
            return bridge.error(bridge.EXPIRED, "the listing has expired")
        if listing.author == buyer:
            return bridge.error(bridge.OWN_LISTING, "a seller cannot buy their own listing")
        if (body.price.amount, body.price.currency) != (request.amount, request.currency):
            return bridge.error(
                bridge.PRICE_MISMATCH,
                f"the listing costs {body.price.amount} {body.price.currency}, not"
                f" {request.amount} {request.currency}",
            )
        if body.price.currency not in self._config.currencies:
            return bridge.error(
                bridge.UNSUPPORTED_CURRENCY, f"this bridge does not take {body.price.currency}"
            )
        return listing, body

    # --- webhooks --------------------------------------------------------------------------

    async def webhook(self, payload: bytes, signature: str | None) -> WebhookOutcome:
        """Act on one webhook request; WebhookRefused says why not (and with what status)."""
        if len(payload) > MAX_WEBHOOK_BYTES:
            raise WebhookRefused(413, "webhook body too large")
        if not signature:
            raise WebhookRefused(400, "no Stripe-Signature header")
        try:
            event = self._client.construct_event(
                payload, signature, self._webhook_secret, tolerance=self._config.webhook_tolerance_s
            )
        except stripe.SignatureVerificationError as exc:
            raise WebhookRefused(400, f"bad signature: {exc.user_message or exc}") from None
        except ValueError as exc:
            raise WebhookRefused(400, f"not a Stripe event: {exc}") from None
        signed_at = _signature_time(signature)
        # One webhook at a time: two deliveries of one event must not both publish.
        async with self._lock:
            seen = self._store.event_seen(event.id)
            if seen is not None:
                if seen == signed_at:
                    raise WebhookRefused(409, f"replayed: event {event.id} was delivered before")
                # Stripe delivering an event again (signed anew): acknowledged, nothing redone.
                return WebhookOutcome(event.type, "ignored")
            try:
                outcome = await self._act(event.type, event.data.object)
            except (ValueError, TypeError, AttributeError) as exc:
                raise WebhookRefused(400, f"malformed {event.type} event: {exc}") from None
            if outcome.final:
                self._store.remember_event(event.id, signed_at, now_ms())
        return outcome

    async def _act(self, kind: str, obj: Any) -> WebhookOutcome:
        if kind == SUCCEEDED:
            payment = self._store.payment(str(_field(obj, "id")))
            if payment is None:  # not a payment this bridge started (or not yet stored)
                return WebhookOutcome(kind, "ignored", final=False)
            if (int(_field(obj, "amount") or 0), str(_field(obj, "currency")).upper()) != (
                payment.amount,
                payment.currency,
            ):
                raise WebhookRefused(422, "the payment's amount differs from what was asked")
            if payment.receipt_seq:
                return WebhookOutcome(kind, "ignored")
            record = await self._publish(payment, "paid", 0)
            return WebhookOutcome(kind, "receipt", record.id)
        if kind == REFUNDED:
            payment_intent = _field(obj, "payment_intent")
            payment = self._store.payment(str(payment_intent)) if payment_intent else None
            if payment is None or not payment.receipt_seq:
                return WebhookOutcome(kind, "ignored", final=False)
            refunded = int(_field(obj, "amount_refunded") or 0)
            if refunded <= payment.refunded:
                return WebhookOutcome(kind, "ignored")
            record = await self._publish(payment, "refunded", min(refunded, payment.amount))
            return WebhookOutcome(kind, "refund", record.id)
        return WebhookOutcome(kind, "ignored")

    async def refund(self, payment_intent: str, amount: int | None = None) -> Record:
        """The operator refunds a paid order; the receipt follows at once (Stripe's
        ``charge.refunded`` webhook, when it comes, then changes nothing)."""
        async with self._lock:
            payment = self._store.payment(payment_intent)
            if payment is None or not payment.receipt_seq:
                raise LookupError(f"{payment_intent} is not a paid order of this bridge")
            if payment.refunded >= payment.amount:
                raise ValueError(f"{payment_intent} is refunded already")
            left = payment.amount - payment.refunded
            if amount is not None and not 0 < amount <= left:
                raise ValueError(f"amount must be 1 to {left}")
            params: dict[str, Any] = {"payment_intent": payment_intent}
            if amount is not None:
                params["amount"] = amount
            try:
                refund = await self._client.v1.refunds.create_async(params=params)  # type: ignore[arg-type]
            except stripe.StripeError as exc:
                raise RuntimeError(
                    f"Stripe refused the refund: {exc.user_message or exc}"
                ) from None
            total = payment.refunded + int(refund.amount)
            return await self._publish(payment, "refunded", min(total, payment.amount))

    async def _publish(self, payment: Payment, status: str, refunded: int) -> Record:
        seq = payment.receipt_seq + 1
        record = await self._publisher.publish(
            kind="receipt",
            subject=payment.payment_intent,
            seq=seq,
            body=ReceiptBody(
                listing=payment.listing,
                listing_subject=payment.listing_subject,
                seller=payment.seller,
                buyer=payment.buyer,
                amount=payment.amount,
                currency=payment.currency,
                payment_intent=payment.payment_intent,
                status="paid" if status == "paid" else "refunded",
                refunded=refunded,
            ),
        )
        self._store.settle(payment.payment_intent, status, refunded, seq)
        log.info("stripe bridge: %s receipt for %s published", status, payment.payment_intent)
        return record

    async def aclose(self) -> None:
        await self._http.close_async()  # type: ignore[no-untyped-call]


def idempotency_key(listing: str, buyer: str, amount: int, currency: str) -> str:
    digest = hashlib.sha256(f"{listing}:{buyer}:{amount}:{currency}".encode()).hexdigest()
    return f"zion-pay-{digest[:48]}"


def _field(obj: Any, name: str) -> Any:
    """A field of an event's object, or None (Stripe's objects are not dicts: no .get)."""
    try:
        return obj[name]
    except (KeyError, TypeError):
        return None


def _signature_time(header: str) -> int:
    """The timestamp Stripe's library checked: the first ``t=`` item, read as it reads it."""
    for part in header.split(","):
        key, _, value = part.partition("=")
        if key == "t":
            return int(value) if value.isdigit() else 0
    return 0
