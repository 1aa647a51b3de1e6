"""The member's profile: display name, avatar, an optional wallet link, and what the node
adds itself: its direct-message key and its payment bridges."""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from zion.gateway.services import InvalidInput, NotFound
from zion.node.publishing import Publisher
from zion.protocols.errors import ProtocolError
from zion.protocols.records import PROFILE_SUBJECT, ProfileBody, Record
from zion.storage.records import RecordStore


class ProfileService:
    def __init__(
        self,
        store: RecordStore,
        publisher: Publisher,
        peer_id: str,
        enc_key: Callable[[], bytes | None] = lambda: None,
        payment_bridges: Callable[[], list[str]] = list,
    ) -> None:
        """``enc_key``: this node's current direct-message key (node.dmkeys);
        ``payment_bridges``: the Stripe bridges it takes payments through (node.payments).
        Both are published in every profile it writes."""
        self._store = store
        self._publisher = publisher
        self._peer_id = peer_id
        self._enc_key = enc_key
        self._payment_bridges = payment_bridges

    def get(self, author: str) -> Record:
        record = self._store.head(author, PROFILE_SUBJECT)
        if record is None or record.kind != "profile":
            raise NotFound(f"no profile for {author[:60]}")
        return record

    async def set(
        self,
        name: str,
        avatar: str | None = None,
        wallet: str | None = None,
        wallet_sig: bytes | None = None,
    ) -> Record:
        current = self._store.head(self._peer_id, PROFILE_SUBJECT)
        seq = 1 if current is None else current.seq + 1
        try:
            body = msgspec.convert(
                {
                    "name": name,
                    "avatar": avatar,
                    "wallet": wallet,
                    "wallet_sig": wallet_sig,
                    "enc_key": self._enc_key(),
                    "payment_bridges": self._payment_bridges(),
                },
                ProfileBody,
            )
            return await self._publisher.publish(
                kind="profile", subject=PROFILE_SUBJECT, seq=seq, body=body
            )
        except msgspec.ValidationError as exc:
            raise InvalidInput(str(exc).replace("$.", "")) from None
        except ProtocolError as exc:
            raise InvalidInput(exc.detail) from None

    def outdated(self) -> bool:
        """Whether this node's profile lacks its current key or payment bridges."""
        current = self._store.head(self._peer_id, PROFILE_SUBJECT)
        if current is None or not isinstance(current.body, ProfileBody):
            return False
        body = current.body
        return (body.enc_key, body.payment_bridges) != (self._enc_key(), self._payment_bridges())

    async def republish(self) -> Record:
        current = self._store.head(self._peer_id, PROFILE_SUBJECT)
        if current is None or not isinstance(current.body, ProfileBody):
            raise InvalidInput("set a profile first: the direct-message key travels in it")
        body = current.body
        return await self.set(body.name, body.avatar, body.wallet, body.wallet_sig)
