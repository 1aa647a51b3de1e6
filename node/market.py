"""Listings: create, update, delete (a tombstone), find."""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, Final

import msgspec

from zion.gateway.services import InvalidInput, NotFound, Page
from zion.node.clock import now_ms
from zion.node.publishing import Publisher
from zion.protocols import limits
from zion.protocols.cid import Cid
from zion.protocols.errors import ProtocolError
from zion.protocols.records import CURRENCY_PATTERN, ListingBody, Record, TombstoneBody
from zion.storage.errors import StorageError
from zion.storage.pins import listing_owner
from zion.storage.records import RecordStore

#: Pins exactly these CIDs for an owner (ContentService.replace_pins).
PinImages = Callable[[str, list[Cid]], Awaitable[None]]

DEFAULT_LISTING_DAYS: Final = 30
#: Categories offered as filters: the most used ones.
MAX_CATEGORIES: Final = 100
_DAY_MS: Final = 24 * 3600 * 1000
_CONTROL_FIELDS: Final = frozenset({"expires", "expires_in_days"})


def new_subject() -> str:
    """130 random bits, base32: unique without coordination."""
    return base64.b32encode(secrets.token_bytes(16)).decode("ascii").rstrip("=").lower()


class MarketService:
    def __init__(
        self, store: RecordStore, publisher: Publisher, peer_id: str, pin_images: PinImages
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._peer_id = peer_id
        self._pin_images_for = pin_images

    def find(
        self,
        *,
        query: str | None,
        category: str | None,
        author: str | None,
        limit: int,
        cursor: str | None,
        currency: str | None = None,
        min_price: int | None = None,
        max_price: int | None = None,
    ) -> Page:
        if currency is not None and not re.match(CURRENCY_PATTERN, currency):
            raise InvalidInput("currency must be a code such as EUR or USDC (capitals)")
        if min_price is not None and max_price is not None and min_price > max_price:
            raise InvalidInput("min_price is above max_price")
        try:
            page = self._store.listings(
                query=query,
                category=category,
                author=author,
                currency=currency,
                min_price=min_price,
                max_price=max_price,
                limit=limit,
                cursor=cursor,
            )
        except StorageError as exc:
            raise InvalidInput(str(exc)) from None
        return Page(page.items, page.next)

    def categories(self) -> list[tuple[str, int]]:
        return self._store.categories(MAX_CATEGORIES)

    def get(self, listing_id: str) -> Record:
        record = self._store.listing(listing_id, prefer_author=self._peer_id)
        if record is None:
            raise NotFound(f"no listing {listing_id[:80]!r}")
        return record

    async def create(self, fields: dict[str, Any]) -> Record:
        body, expires = _parse(fields)
        return await self._publish(new_subject(), 1, body, expires)

    async def update(self, listing_id: str, fields: dict[str, Any]) -> Record:
        current = self._own_head(listing_id)
        body, expires = _parse(fields)
        return await self._publish(listing_id, current.seq + 1, body, expires)

    async def delete(self, listing_id: str) -> None:
        current = self._own_head(listing_id)
        await self._publisher.publish(
            kind="tombstone",
            subject=listing_id,
            seq=current.seq + 1,
            body=TombstoneBody(of="listing"),
        )
        await self._pin_images(listing_id, [])

    def _own_head(self, listing_id: str) -> Record:
        current = self._store.head(self._peer_id, listing_id)
        if current is None or current.kind != "listing":
            raise NotFound(f"you have no listing {listing_id[:80]!r}")
        return current

    async def _publish(self, subject: str, seq: int, body: ListingBody, expires: int) -> Record:
        try:
            record = await self._publisher.publish(
                kind="listing", subject=subject, seq=seq, body=body, expires=expires
            )
        except ProtocolError as exc:
            raise InvalidInput(exc.detail) from None
        await self._pin_images(subject, list(body.images))
        return record

    async def _pin_images(self, subject: str, images: list[str]) -> None:
        """Our own listings keep their images here (other members' listings' images are
        fetched when viewed and may be collected). The record validated them as CIDs."""
        cids = [Cid.parse(image) for image in images]
        await self._pin_images_for(listing_owner(self._peer_id, subject), cids)


def _parse(fields: dict[str, Any]) -> tuple[ListingBody, int]:
    """A listing body and its expiry from API input (expires in ms, or expires_in_days)."""
    body_fields = {k: v for k, v in fields.items() if k not in _CONTROL_FIELDS}
    try:
        body = msgspec.convert(body_fields, ListingBody)
    except msgspec.ValidationError as exc:
        raise InvalidInput(str(exc).replace("$.", "")) from None
    now = now_ms()
    expires = fields.get("expires")
    days = fields.get("expires_in_days", DEFAULT_LISTING_DAYS)
    if expires is None:
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 365:
            raise InvalidInput("expires_in_days must be a whole number from 1 to 365")
        expires = now + days * _DAY_MS
    if not isinstance(expires, int) or not now < expires <= now + limits.MAX_EXPIRY_MS:
        raise InvalidInput("expires must be a time in ms within the next 365 days")
    return body, expires
