"""Shared fixtures: keys and records built with the real signing code."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from zion.protocols import records

NOW = 1_800_000_000_000
DAY = 24 * 3600 * 1000


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--soak-seconds",
        type=float,
        default=300.0,
        help="how long tests/integration/test_soak.py keeps its 20 nodes busy (default: 300)",
    )


#: What the soak test needs besides its --soak-seconds: 20 node starts, convergence, checks.
SOAK_OVERHEAD_S = 600


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The soak's timeout follows --soak-seconds (the suite's default would cut it short),
    and it goes first: with two workers (dev.sh test) it then runs beside everything else
    instead of alone at the end."""
    timeout = config.getoption("--soak-seconds") + SOAK_OVERHEAD_S
    soak = [item for item in items if item.get_closest_marker("soak") is not None]
    for item in soak:
        item.add_marker(pytest.mark.timeout(timeout))
    items[:] = soak + [item for item in items if item not in soak]


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


def make_listing(
    key: Ed25519PrivateKey,
    subject: str = "bike1",
    seq: int = 1,
    created: int = NOW,
    title: str = "Red bike",
    **fields: object,
) -> records.Record:
    body = records.ListingBody(
        title=title,
        price=fields.pop("price", records.Price(amount=12000, currency="EUR")),  # type: ignore[arg-type]
        category=str(fields.pop("category", "bikes")),
        description=str(fields.pop("description", "A red bicycle, barely used")),
        tags=list(fields.pop("tags", ["red", "bicycle"])),  # type: ignore[call-overload]
    )
    return records.sign_record(
        key,
        kind="listing",
        subject=subject,
        seq=seq,
        created=created,
        body=body,
        expires=created + 30 * DAY,
    )


@pytest.fixture
def listing_factory(key: Ed25519PrivateKey) -> Callable[..., records.Record]:
    def factory(**kwargs: object) -> records.Record:
        return make_listing(key, **kwargs)  # type: ignore[arg-type]

    return factory
