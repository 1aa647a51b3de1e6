"""The one exception hierarchy of zion.contracts."""

from __future__ import annotations


class ChainError(Exception):
    """A chain call or transaction failed; the message says what to do."""


class ContractRevert(ChainError):
    """A contract refused: ``name`` is the Solidity custom error (e.g. GovernorInvalidSignature)
    or "Error" for a require message, ``args`` its decoded arguments."""

    def __init__(self, name: str, args: tuple[object, ...], detail: str = "") -> None:
        shown = ", ".join(repr(arg) for arg in args)
        super().__init__(f"{name}({shown}){': ' + detail if detail else ''}")
        self.name = name
        self.args_ = args
