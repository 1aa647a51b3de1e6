"""Reading request bodies: one JSON object, or a clear 422."""

from __future__ import annotations

import json
from typing import Any

from zion.gateway.services import InvalidInput


def parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"request body is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidInput("request body must be a JSON object")
    return value
