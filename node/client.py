"""The CLI's way to a running node: its gateway, with the token from the node home."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
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
        with self._errors():
            response = self._client.request(method, path, **kwargs)
        _raise_for_problem(response)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    @contextlib.contextmanager
    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        """A response whose body is read as it arrives (content downloads, uploads); no
        overall timeout, since a large file takes as long as it takes."""
        with (
            self._errors(),
            self._client.stream(
                method, path, timeout=httpx.Timeout(TIMEOUT_S, read=None, write=None), **kwargs
            ) as response,
        ):
            if response.status_code >= 400:
                response.read()
                _raise_for_problem(response)
            yield response

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except httpx.ConnectError:
            raise NodeError(
                f"the node for {self.home.path} is not answering at {self.base_url}"
                f" (is it running? start it with: zion --home {self.home.path} run)"
            ) from None
        except httpx.HTTPError as exc:
            raise NodeError(f"request to {self.base_url} failed: {exc}") from None

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self.request("POST", path, json=body)


def _raise_for_problem(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        detail = response.text
    raise NodeError(f"{response.status_code}: {detail}")
