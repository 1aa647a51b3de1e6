"""Node profiles: the seed overlay over the defaults, under the home's own config.toml."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from zion.node import config
from zion.node.daemon import JsonLogFormatter
from zion.node.errors import NodeError


def test_the_seed_profile_overlays_the_defaults(tmp_path: Path) -> None:
    member = config.load(None)
    seed = config.load(None, profile="seed")
    assert (member.network.dht_mode, seed.network.dht_mode) == ("client", "server")
    assert (member.gateway.ui, seed.gateway.ui) == (True, False)
    assert (member.dm.mailbox, seed.dm.mailbox) == (False, True)
    assert (member.metrics.listen, seed.metrics.listen) == ("", "127.0.0.1:9464")
    assert (member.logging.format, seed.logging.format) == ("text", "json")
    # What the profile does not say stays the default.
    assert seed.gossip == member.gossip
    # The home's config.toml overrides the profile, and flags override both.
    own = tmp_path / "config.toml"
    own.write_text('[metrics]\nlisten = "127.0.0.1:9999"\n[logging]\nformat = "text"\n')
    mine = config.load(own, {"gateway": {"ui": True}}, profile="seed")
    assert (mine.metrics.listen, mine.logging.format, mine.gateway.ui) == (
        "127.0.0.1:9999",
        "text",
        True,
    )
    assert mine.network.dht_mode == "server"


def test_bad_profiles_and_values_are_named() -> None:
    with pytest.raises(NodeError, match="profile"):
        config.load(None, profile="relay")
    with pytest.raises(NodeError, match="dht_mode"):
        config.load(None, {"network": {"dht_mode": "both"}})
    with pytest.raises(NodeError, match="format"):
        config.load(None, {"logging": {"format": "xml"}})
    with pytest.raises(NodeError, match=r"metrics\.listen"):
        config.load(None, {"metrics": {"listen": "nowhere"}})


def test_json_logs_are_one_object_per_line() -> None:
    record = logging.LogRecord("zion.x", logging.WARNING, __file__, 1, "a %s\nb", ("é",), None)
    line = JsonLogFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "warning" and entry["logger"] == "zion.x"
    assert entry["message"] == "a é\nb" and entry["time"].endswith("Z")
