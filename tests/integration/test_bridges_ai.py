"""The AI bridge end to end: a member's node asks a bridge node over libp2p; the bridge holds
the key and talks to an OpenAI-compatible server (a local test server: OpenAI's hosted API
cannot be reached from here). The member's node never sees the key."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.nodes import NodeProcess, Spawn, wait_until
from tests.integration.test_cli import zion
from zion.devtools.ai_server import running_ai_server

KEY = "sk-zion-test-bridge-key-0123456789"


@pytest.fixture
def ai_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    log = tmp_path / "ai-requests.jsonl"
    with running_ai_server(KEY, log=log) as url:
        yield url, log


def ai_bridge_config(base_url: str, quota: int = 100) -> str:
    return f"""
[bridge]
name = "Test AI"

[bridge.ai]
enabled = true
base_url = "{base_url}"
model = "test-chat"
embedding_model = "test-embed"
quota_per_day = {quota}
burst = 100
rate_per_minute = 6000
terms = "Answers may be wrong."
"""


def stream(node: NodeProcess, path: str, body: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
    """The NDJSON lines of a streamed answer, as a page would read them."""
    with node.api.stream("POST", path, json=body) as response:
        if response.status_code != 200:
            response.read()
            return response.status_code, [response.json()]
        assert response.headers["content-type"].startswith("application/x-ndjson")
        return 200, [json.loads(line) for line in response.iter_lines() if line]


def text_of(lines: list[dict[str, Any]]) -> str:
    return "".join(line["text"] for line in lines if line["type"] == "chunk")


def member_and_bridge(
    spawn: Spawn, ai_server: tuple[str, Path], quota: int = 100
) -> tuple[NodeProcess, NodeProcess]:
    bridge = spawn(
        "bridge", config=ai_bridge_config(ai_server[0], quota), env={"ZION_AI_API_KEY": KEY}
    )
    # Named in config: only such a bridge is asked for embeddings in the background.
    member = spawn(
        "member", bootstrap=[bridge.address], config=f'[bridges]\nai = ["{bridge.address}"]\n'
    )
    wait_until(
        lambda: member.api.get("/api/v1/bridges").json()["items"], 30, "the bridge announcement"
    )
    return member, bridge


def test_drafting_asking_and_embeddings_go_through_the_bridge(
    spawn: Spawn, ai_server: tuple[str, Path]
) -> None:
    member, bridge = member_and_bridge(spawn, ai_server)
    bridge_id = bridge.peer_id

    status, lines = stream(
        member, "/api/v1/ai/draft", {"notes": "walnut desk, two drawers, small scratch"}
    )
    assert status == 200
    assert lines[0] == {"type": "source", "bridge": bridge_id, "name": "Test AI"}
    assert lines[-1] == {"type": "done", "model": "test-chat"}
    assert len([line for line in lines if line["type"] == "chunk"]) > 1  # it streamed
    draft = text_of(lines)
    assert draft.startswith("Title: ") and "drawers" in draft and "scratch" in draft

    bike = member.create_listing("Red bike", description="A red city bike with gears")
    member.create_listing("Oak table", description="Solid oak, seats six")
    status, lines = stream(member, "/api/v1/ai/ask", {"question": "Is there a red bike?"})
    assert status == 200
    assert lines[0]["type"] == "source" and lines[0]["bridge"] == bridge_id
    context = next(line for line in lines if line["type"] == "context")
    assert context["listings"][0] == bike["cid"]
    assert f"[{bike['cid']}]" in text_of(lines)

    vectors = member.api.post(
        "/api/v1/ai/embeddings", json={"texts": ["red bike", "red bicycle", "oak table"]}
    )
    assert vectors.status_code == 200, vectors.text
    answer = vectors.json()
    assert answer["bridge"] == bridge_id and answer["model"] == "test-embed"
    assert len(answer["vectors"]) == 3
    assert all(len(v) == answer["dimensions"] for v in answer["vectors"])

    similar = member.api.get(f"/api/v1/listings/{bike['id']}/similar").json()
    assert similar["source"] == "embeddings"

    # The same through the CLI.
    listed = zion(member.home, "bridge", "ls").stdout
    assert bridge_id in listed and "ai (open)" in listed and "Answers may be wrong." in listed
    drafted = zion(member.home, "ai", "draft", "green", "brass", "lamp")
    assert "Title:" in drafted.stdout and "brass" in drafted.stdout
    assert f"[from Test AI {bridge_id}]" in drafted.stderr
    asked = zion(member.home, "ai", "ask", "any", "red", "bike?").stdout
    assert f"[{bike['cid']}]" in asked
    assert "[embeddings ranking]" in zion(member.home, "ai", "similar", bike["id"]).stderr

    # Every upstream request came from the bridge, with the key.
    requests = [json.loads(line) for line in ai_server[1].read_text().splitlines()]
    assert requests and all(r["authorized"] for r in requests)
    # The member's node never held the key: not in its home, its log, or its environment.
    assert member.process is not None
    environ = Path(f"/proc/{member.process.pid}/environ").read_bytes()
    assert KEY.encode() not in environ
    for path in [*member.home.rglob("*"), member.log_file]:
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
    # ...and the bridge does not leak it: not in its announcement, not in its log.
    assert KEY not in json.dumps(member.api.get("/api/v1/bridges").json())
    assert KEY.encode() not in bridge.log_file.read_bytes()


def test_quota_exhaustion_and_a_bridge_going_down_are_clear_errors(
    spawn: Spawn, ai_server: tuple[str, Path]
) -> None:
    member, bridge = member_and_bridge(spawn, ai_server, quota=2)
    for _ in range(2):
        assert stream(member, "/api/v1/ai/draft", {"notes": "a lamp"})[0] == 200
    status, (problem,) = stream(member, "/api/v1/ai/draft", {"notes": "a lamp"})
    failed = zion(member.home, "ai", "draft", "a", "lamp", check=False)
    assert failed.returncode != 0 and "429" in failed.stderr and "a day" in failed.stderr
    assert status == 429
    assert problem["code"] == "quota-exhausted"
    assert "2 requests a day" in problem["detail"]

    bridge.stop()
    status, (problem,) = stream(member, "/api/v1/ai/draft", {"notes": "a lamp"})
    assert status in (503, 504)
    assert problem["code"] in ("unreachable", "timeout")
    assert "bridge" in problem["detail"]


def test_the_upstream_failing_is_a_bad_gateway(spawn: Spawn, tmp_path: Path) -> None:
    with running_ai_server(KEY, fail_status=429) as url:
        member, _ = member_and_bridge(spawn, (url, tmp_path / "unused.jsonl"))
        status, (problem,) = stream(member, "/api/v1/ai/draft", {"notes": "a lamp"})
    assert status == 502
    assert problem["code"] == "upstream-failed"
    assert "busy" in problem["detail"] and KEY not in problem["detail"]


def test_recommendations_work_with_no_bridge_at_all(spawn: Spawn) -> None:
    alone = spawn("alone")
    bike = alone.create_listing("Red bike", category="bikes", tags=["red", "city"])
    alone.create_listing("Blue bike", category="bikes", tags=["blue", "city"])
    alone.create_listing("Oak table", category="furniture", tags=["oak"])
    similar = alone.api.get(f"/api/v1/listings/{bike['id']}/similar").json()
    assert similar["source"] == "local"
    assert similar["items"][0]["title"] == "Blue bike"
    assert bike["id"] not in [item["id"] for item in similar["items"]]
    for_you = alone.api.get("/api/v1/recommendations")
    assert for_you.status_code == 200 and for_you.json()["source"] == "local"
    # AI itself needs a bridge: a clear error, not a hang.
    status = alone.api.post("/api/v1/ai/draft", json={"notes": "a lamp"})
    assert status.status_code == 503 and status.json()["code"] == "no-bridge"
    empty = alone.api.post("/api/v1/ai/ask", json={"question": ""})
    assert empty.status_code == 422 and "question" in empty.json()["detail"]
