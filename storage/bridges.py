"""What bridges keep: daily usage per member, a Stripe bridge's payments and handled webhook
events, and a buyer's own orders (payments started, waiting for their receipt)."""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Final

from zion.storage.database import Database

DAY_MS: Final = 24 * 3600 * 1000
#: Handled webhook events are remembered this long: Stripe stops retrying after 3 days, and a
#: replay older than the signature tolerance is refused by its timestamp anyway.
EVENT_MEMORY_MS: Final = 30 * DAY_MS
#: Usage rows older than this many days are dropped (quotas are per day).
USAGE_MEMORY_DAYS: Final = 2
MAX_ORDERS: Final = 500
#: The usage row that counts every member's requests together.
EVERYONE: Final = "*"


@dataclass(frozen=True)
class Payment:
    """A PaymentIntent a Stripe bridge created for a buyer."""

    payment_intent: str
    listing: str
    listing_subject: str
    buyer: str
    seller: str
    amount: int
    currency: str
    created: int
    status: str
    refunded: int
    receipt_seq: int


@dataclass(frozen=True)
class Order:
    """A payment this member started through a bridge."""

    payment_intent: str
    listing: str
    listing_subject: str
    bridge: str
    seller: str
    amount: int
    currency: str
    client_secret: str
    created: int


class BridgeStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    # --- quotas (the bridge's side) ----------------------------------------------------------

    def take_quota(
        self, service: str, account: str, now_ms: int, per_day: int, total_per_day: int = 0
    ) -> str | None:
        """Count one request by ``account`` today, unless it already made ``per_day`` or
        everyone together made ``total_per_day`` (0: no such limit). None when counted, else
        whose limit was reached: "member" or "everyone"."""
        day = now_ms // DAY_MS
        with self._write() as conn:
            for who, limit, name in (
                (account, per_day, "member"),
                (EVERYONE, total_per_day, "everyone"),
            ):
                row = conn.execute(
                    "SELECT count FROM bridge_usage WHERE service = ? AND peer = ? AND day = ?",
                    (service, who, day),
                ).fetchone()
                if limit and row is not None and row[0] >= limit:
                    return name
            for who in (account, EVERYONE):
                conn.execute(
                    "INSERT INTO bridge_usage (service, peer, day, count) VALUES (?, ?, ?, 1)"
                    " ON CONFLICT (service, peer, day) DO UPDATE SET count = count + 1",
                    (service, who, day),
                )
            conn.execute("DELETE FROM bridge_usage WHERE day < ?", (day - USAGE_MEMORY_DAYS,))
        return None

    # --- a Stripe bridge's payments ------------------------------------------------------

    def add_payment(self, payment: Payment) -> Payment:
        """Remember a created PaymentIntent; one already known (an idempotent retry) stays."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO stripe_payments (payment_intent, listing, listing_subject, buyer,"
                " seller, amount, currency, created, status, refunded, receipt_seq)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (
                    payment.payment_intent,
                    payment.listing,
                    payment.listing_subject,
                    payment.buyer,
                    payment.seller,
                    payment.amount,
                    payment.currency,
                    payment.created,
                    payment.status,
                    payment.refunded,
                    payment.receipt_seq,
                ),
            )
        found = self.payment(payment.payment_intent)
        assert found is not None
        return found

    def payment(self, payment_intent: str) -> Payment | None:
        rows = self._read(
            "SELECT payment_intent, listing, listing_subject, buyer, seller, amount, currency,"
            " created, status, refunded, receipt_seq FROM stripe_payments"
            " WHERE payment_intent = ?",
            (payment_intent,),
        )
        return Payment(*rows[0]) if rows else None

    def settle(self, payment_intent: str, status: str, refunded: int, receipt_seq: int) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE stripe_payments SET status = ?, refunded = ?, receipt_seq = ?"
                " WHERE payment_intent = ?",
                (status, refunded, receipt_seq, payment_intent),
            )

    def event_seen(self, event_id: str) -> int | None:
        """When (the signature's timestamp) an event was handled, if it was."""
        rows = self._read("SELECT signed_at FROM stripe_events WHERE id = ?", (event_id,))
        return int(rows[0][0]) if rows else None

    def remember_event(self, event_id: str, signed_at: int, now_ms: int) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO stripe_events (id, signed_at, received) VALUES (?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (event_id, signed_at, now_ms),
            )
            conn.execute(
                "DELETE FROM stripe_events WHERE received < ?", (now_ms - EVENT_MEMORY_MS,)
            )

    # --- a buyer's orders ----------------------------------------------------------------

    def add_order(self, order: Order) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO orders (payment_intent, listing, listing_subject, bridge, seller,"
                " amount, currency, client_secret, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (
                    order.payment_intent,
                    order.listing,
                    order.listing_subject,
                    order.bridge,
                    order.seller,
                    order.amount,
                    order.currency,
                    order.client_secret,
                    order.created,
                ),
            )

    def order(self, payment_intent: str) -> Order | None:
        rows = self._read(
            "SELECT payment_intent, listing, listing_subject, bridge, seller, amount, currency,"
            " client_secret, created FROM orders WHERE payment_intent = ?",
            (payment_intent,),
        )
        return Order(*rows[0]) if rows else None

    def orders(self, limit: int = MAX_ORDERS) -> list[Order]:
        rows = self._read(
            "SELECT payment_intent, listing, listing_subject, bridge, seller, amount, currency,"
            " client_secret, created FROM orders ORDER BY created DESC LIMIT ?",
            (limit,),
        )
        return [Order(*row) for row in rows]

    # --- plumbing ------------------------------------------------------------------------

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._db.transaction("store bridge state")

    def _read(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        return self._db.read(sql, params)
