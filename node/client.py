"""The CLI's way to a running node: its gateway, with the token from the node home."""

from __future__ import annotations

from typing import Any, Final

import httpx

from zion.node.errors import NodeError
from zion.node.home import NodeHome

TIMEOUT_S: Final = 30.0


class GatewayClient:
    def __init__(self, home: NodeHome) -> None:
        self.home = home
        try:
            self.base_url = home.gateway_file.read_text("utf-8").strip()
        except FileNotFoundError:
            raise NodeError(
                f"no node is running for {home.path} (start one with: zion --home {home.path} run)"
            ) from None
        self._client = httpx.Client(
            base_url=self.base_url,
            timeout=TIMEOUT_S,
            headers={"Authorization": f"Bearer {home.load_token()}"},
        )

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.ConnectError:
            raise NodeError(
                f"the node for {self.home.path} is not answering at {self.base_url}"
                f" (is it running? start it with: zion --home {self.home.path} run)"
            ) from None
        except httpx.HTTPError as exc:
            raise NodeError(f"request to {self.base_url} failed: {exc}") from None
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise NodeError(f"{response.status_code}: {detail}")
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self.request("POST", path, json=body)
