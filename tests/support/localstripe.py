"""localstripe (a stateful fake Stripe server, from PyPI) for the payment tests.

``python -m tests.support.localstripe --port 0`` runs it on 127.0.0.1 only (its own command
listens on every interface) and without its pickle file in /tmp (shared by every run on the
machine), then prints ``listening http://127.0.0.1:PORT``.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from tests.support.listening import HOST, running_module

#: localstripe takes any key of this shape; the bridge's Stripe client needs one.
SECRET_KEY = "sk_test_zionbridge0000000000"
PUBLISHABLE_KEY = "pk_test_zionbridge0000000000"
#: Test cards (localstripe follows Stripe's test numbers).
CARD_OK = "4242424242424242"


@contextmanager
def running_localstripe() -> Iterator[str]:
    """Run localstripe in a subprocess; yield its base URL."""
    with running_module("tests.support.localstripe", "--port", "0", what="localstripe") as url:
        yield url


def register_webhook(base_url: str, url: str, secret: str, events: list[str]) -> None:
    """Make localstripe POST these events, signed with ``secret``, to ``url``."""
    data = {"url": url, "secret": secret}
    for index, event in enumerate(events):
        data[f"events[{index}]"] = event
    response = httpx.post(f"{base_url}/_config/webhooks/zion", data=data, timeout=10)
    response.raise_for_status()


def pay_with_card(base_url: str, payment_intent: str, card: str = CARD_OK) -> dict[str, object]:
    """What the buyer's browser does with Stripe.js and the client secret: attach a card to
    the PaymentIntent and confirm it. Stripe.js cannot load here, so the test does it with
    the API (localstripe needs the secret key for these calls)."""
    auth = {"Authorization": f"Bearer {SECRET_KEY}"}
    with httpx.Client(base_url=base_url, headers=auth, timeout=10) as client:
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
    resources.store.dump_to_disk = lambda: None  # type: ignore[method-assign]
    resources.store.try_load_from_disk = lambda: None  # type: ignore[method-assign]

    async def main() -> None:
        runner = web.AppRunner(server.app)
        await runner.setup()
        site = web.TCPSite(runner, HOST, port)
        await site.start()
        bound = runner.addresses[0][1]
        print(f"listening http://{HOST}:{bound}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    _serve(parser.parse_args().port)
