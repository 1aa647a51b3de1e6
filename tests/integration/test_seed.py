"""`zion run --profile seed`: a DHT server with a mailbox, no web UI, Prometheus metrics on
their own port and JSON logs."""

from __future__ import annotations

import json

import httpx

from tests.integration.nodes import Spawn, wait_until


def test_a_seed_serves_metrics_and_json_logs_and_no_web_ui(spawn: Spawn) -> None:
    seed = spawn("seed", extra=["--profile", "seed", "--metrics", "127.0.0.1:0"])
    metrics_url = wait_until(
        lambda: (
            (seed.home / "metrics.url").exists() and (seed.home / "metrics.url").read_text().strip()
        ),
        10,
        "the metrics endpoint",
    )
    status = seed.status()
    assert status["dht"] == "server"

    # No web UI; the API stays for the CLI.
    assert seed.api.get("/").status_code == 404
    assert seed.api.get("/ui/app.js").status_code == 404
    assert seed.api.get("/api/v1/node").status_code == 200

    member = spawn("member", bootstrap=[seed.address])
    member.create_listing("Seeded lamp")

    def scrape() -> dict[str, float]:
        text = httpx.get(f"{metrics_url}/metrics", timeout=5).text
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        return values

    seen = wait_until(
        lambda: (values := scrape())["zion_peers"] >= 1 and values["zion_records"] >= 1 and values,
        20,
        "the seed's metrics to count the member and its listing",
    )
    assert seen["process_resident_memory_bytes"] > 10 * 1024 * 1024
    assert "zion_gossip_accepted_total" in seen and "zion_sync_sessions_total" in seen
    assert "zion_gossip_received_bytes_total" in seen and seen["zion_tasks"] > 10
    assert seen['zion_connections{direction="inbound"}'] >= 1
    assert seen["zion_connections_max"] == 1024
    assert seen["zion_blockstore_bytes"] >= 0

    # Logs are one JSON object per line (the banner on stdout stays for people).
    entries = [
        json.loads(line) for line in seed.log_file.read_text().splitlines() if line.startswith("{")
    ]
    assert any(e["logger"] == "zion.gateway.server" for e in entries)
    assert all({"time", "level", "logger", "message"} <= e.keys() for e in entries)
    assert not any(" INFO zion" in line for line in seed.log_file.read_text().splitlines())

    assert seed.stop() == 0
    assert not (seed.home / "metrics.url").exists()
