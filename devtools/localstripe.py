"""localstripe (a stateful fake Stripe server, from PyPI) for the payment tests.

``python -m zion.devtools.localstripe --port 0`` runs it on 127.0.0.1 only (its own command
listens on every interface) and without its pickle file in /tmp (shared by every run on the
machine), then prints ``listening http://127.0.0.1:PORT``. SIGINT and SIGTERM stop it (exit 0).

localstripe is a development dependency (pyproject.toml, extra "dev"), not the node's: it is
imported only when the server runs.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import httpx

from zion.devtools.listening import HOST, running_module

#: localstripe takes any key of this shape; the bridge's Stripe client needs one.
SECRET_KEY: Final = "sk_test_zionbridge0000000000"  # noqa: S105 (a fake server's fake key)
PUBLISHABLE_KEY: Final = "pk_test_zionbridge0000000000"
#: Test cards (localstripe follows Stripe's test numbers).
CARD_OK: Final = "4242424242424242"
#: How long the helpers here wait for localstripe to answer.
HTTP_TIMEOUT_S: Final = 10.0


@contextmanager
def running_localstripe() -> Iterator[str]:
    """Run localstripe in a subprocess; yield its base URL."""
    with running_module("zion.devtools.localstripe", "--port", "0", what="localstripe") as url:
        yield url


def register_webhook(base_url: str, url: str, secret: str, events: list[str]) -> None:
    """Make localstripe POST these events, signed with ``secret``, to ``url``."""
    data = {"url": url, "secret": secret}
    for index, event in enumerate(events):
        data[f"events[{index}]"] = event
    response = httpx.post(f"{base_url}/_config/webhooks/zion", data=data, timeout=HTTP_TIMEOUT_S)
    response.raise_for_status()


def pay_with_card(base_url: str, payment_intent: str, card: str = CARD_OK) -> dict[str, object]:
    """What the buyer's browser does with Stripe.js and the client secret: attach a card to
    the PaymentIntent and confirm it. Stripe.js cannot load here, so the test does it with
    the API (localstripe needs the secret key for these calls)."""
    auth = {"Authorization": f"Bearer {SECRET_KEY}"}
    with httpx.Client(base_url=base_url, headers=auth, timeout=HTTP_TIMEOUT_S) as client:
        method = client.post(
            "/v1/payment_methods",
            data={
                "type": "card",
                "card[number]": card,
                "card[exp_month]": "12",
                "card[exp_year]": "2030",
                "card[cvc]": "123",
            },
        )
        method.raise_for_status()
        updated = client.post(
            f"/v1/payment_intents/{payment_intent}", data={"payment_method": method.json()["id"]}
        )
        updated.raise_for_status()
        confirmed = client.post(f"/v1/payment_intents/{payment_intent}/confirm")
        confirmed.raise_for_status()
        return dict(confirmed.json())


def _serve(port: int) -> None:
    from aiohttp import web
    from localstripe import resources, server

    # The shared pickle in /tmp would leak state between runs and between parallel tests.
    resources.store.dump_to_disk = lambda: None
    resources.store.try_load_from_disk = lambda: None

    async def serve() -> None:
        runner = web.AppRunner(server.app)
        await runner.setup()
        site = web.TCPSite(runner, HOST, port)
        await site.start()
        bound = runner.addresses[0][1]
        stop = asyncio.Event()
        # `zion devnet` stops its children with SIGTERM: the same quiet exit as Ctrl-C.
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        print(f"listening http://{HOST}:{bound}", flush=True)
        await stop.wait()
        await runner.cleanup()

    asyncio.run(serve())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    _serve(parser.parse_args().port)


if __name__ == "__main__":
    main()
