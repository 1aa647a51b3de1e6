"""Revert data to the contract error it names, the same way on anvil and on eth-tester.

web3 raises ContractCustomError (hex data) from a JSON-RPC node such as anvil; eth-tester raises
its own TransactionFailed whose message holds the revert bytes. Both become ContractRevert with
the error's name and arguments, decoded from the ABIs of all Zion contracts.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from typing import Any, Final

from eth_abi.abi import decode as abi_decode
from eth_utils.abi import function_signature_to_4byte_selector

from zion.contracts import artifacts
from zion.contracts.errors import ContractRevert

#: Error(string) and Panic(uint256): what require() and assert() revert with.
_ERROR_STRING: Final = bytes.fromhex("08c379a0")
_PANIC: Final = bytes.fromhex("4e487b71")
_BYTES_LITERAL: Final = re.compile(r"(b'.*'|b\".*\")\s*$", re.DOTALL)


@cache
def _known_errors() -> dict[bytes, tuple[str, list[str]]]:
    errors: dict[bytes, tuple[str, list[str]]] = {}
    for name in artifacts.ALL:
        for item in artifacts.load(name).abi:
            if item.get("type") != "error":
                continue
            types = [_abi_type(arg) for arg in item["inputs"]]
            signature = f"{item['name']}({','.join(types)})"
            errors[function_signature_to_4byte_selector(signature)] = (item["name"], types)
    return errors


def _abi_type(arg: dict[str, Any]) -> str:
    if arg["type"].startswith("tuple"):
        inner = ",".join(_abi_type(component) for component in arg["components"])
        return f"({inner}){arg['type'][5:]}"
    return str(arg["type"])


def revert_data(exc: BaseException) -> bytes | None:
    """The revert bytes carried by a web3 or eth-tester exception, if any."""
    data = getattr(exc, "data", None)
    if isinstance(data, str) and data.startswith("0x"):
        return bytes.fromhex(data[2:])
    if isinstance(data, bytes):
        return data
    match = _BYTES_LITERAL.search(str(exc))
    if match:
        try:
            value = ast.literal_eval(match.group(1))
        except (ValueError, SyntaxError):
            return None
        return value if isinstance(value, bytes) else None
    return None


def decode_revert(data: bytes) -> ContractRevert:
    selector, payload = data[:4], data[4:]
    if selector == _ERROR_STRING:
        (message,) = abi_decode(["string"], payload)
        return ContractRevert("Error", (message,))
    if selector == _PANIC:
        (code,) = abi_decode(["uint256"], payload)
        return ContractRevert("Panic", (code,))
    known = _known_errors().get(selector)
    if known is None:
        return ContractRevert("UnknownError", (data.hex(),))
    name, types = known
    try:
        values = tuple(abi_decode(types, payload))
    except Exception:
        values = (payload.hex(),)
    return ContractRevert(name, tuple(_readable(v) for v in values))


def _readable(value: object) -> object:
    return "0x" + value.hex() if isinstance(value, bytes) else value
