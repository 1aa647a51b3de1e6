"""The one exception type of zion.protocols: anything that does not decode or verify."""


class ProtocolError(ValueError):
    """Input that is not a valid message of a Zion wire format.

    ``reason`` is a stable machine-readable code (e.g. ``bad-signature``); the message is for
    people.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
