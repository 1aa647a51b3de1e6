"""Public messages in named channels."""

from __future__ import annotations

import msgspec

from zion.gateway.services import InvalidInput, Page
from zion.node.market import new_subject
from zion.node.publishing import Publisher
from zion.protocols.errors import ProtocolError
from zion.protocols.records import MessageBody, Record
from zion.storage.errors import StorageError
from zion.storage.records import RecordStore


class ChannelService:
    def __init__(self, store: RecordStore, publisher: Publisher) -> None:
        self._store = store
        self._publisher = publisher

    def read(self, channel: str, *, limit: int, cursor: str | None) -> Page:
        try:
            page = self._store.messages(channel, limit=limit, cursor=cursor)
        except StorageError as exc:
            raise InvalidInput(str(exc)) from None
        return Page(page.items, page.next)

    async def post(self, channel: str, text: str, reply_to: str | None) -> Record:
        try:
            body = msgspec.convert(
                {"channel": channel, "text": text, "reply_to": reply_to}, MessageBody
            )
            return await self._publisher.publish(
                kind="message", subject=new_subject(), seq=1, body=body
            )
        except msgspec.ValidationError as exc:
            raise InvalidInput(str(exc).replace("$.", "")) from None
        except ProtocolError as exc:
            raise InvalidInput(exc.detail) from None
