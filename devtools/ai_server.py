"""A local OpenAI-compatible server for tests (OpenAI's hosted API cannot be reached from here).

    python -m zion.devtools.ai_server --port 0 --key KEY [--log FILE] [--fail-status CODE]

It listens on 127.0.0.1 only and prints ``listening http://127.0.0.1:PORT`` once it accepts
connections. The response shapes are OpenAI's, as its SDK parses them; the answers are canned
but derived from the input, so that tests can assert on them:

- a chat completion whose user message holds ``<listing id="ID">...</listing>`` blocks (the
  prompt zion.node.ai builds for a question) answers by citing, as ``[ID]``, every listing that
  shares a word with the question (the text after the last ``Question:``);
- any other chat completion is a draft: ``Title: ...`` then ``Description: ...``, made of the
  words after the last ``Notes:`` (or of the whole user message);
- an embedding is a hashed bag of words, L2-normalised: texts that share words are closer.

Every request must carry ``Authorization: Bearer KEY``. ``--fail-status`` makes every chat
completion and embedding fail with that status and OpenAI's error body (429: quota exhausted).
``--log FILE`` appends one JSON line per request: path, whether it was authorized, model.

Standard library only: a stand-in for tests and `zion devnet`, not part of the node. SIGINT
and SIGTERM stop it (exit 0).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import math
import re
import signal
import struct
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any, Final

from zion.devtools.listening import HOST, running_module

DIMENSIONS: Final = 64
MODELS: Final = ("test-chat", "test-embed")
#: Words per streamed chunk: small, so that even a short answer arrives as several events.
WORDS_PER_CHUNK: Final = 2
#: What a failing server asks the SDK to wait before its retry: short, so tests stay fast.
RETRY_AFTER_MS: Final = 10
MAX_BODY_BYTES: Final = 4 * 1024 * 1024

_WORD = re.compile(r"\w+")
_LISTING = re.compile(r'<listing id="([^"]+)">(.*?)</listing>', re.DOTALL)
# Without these, "Is there a bike for sale?" would match every listing that says "for".
_STOPWORDS_TEXT = (
    "a an and any are can do does for from has have how i in is it me my of on or some "
    "that the there this to what which who with you your"
)
_STOPWORDS = frozenset(_STOPWORDS_TEXT.split())


def words(text: str) -> list[str]:
    return [w for w in (m.lower() for m in _WORD.findall(text)) if w not in _STOPWORDS]


def embedding(text: str, dimensions: int) -> list[float]:
    vector = [0.0] * dimensions
    for word in words(text):
        digest = hashlib.sha256(word.encode()).digest()
        vector[int.from_bytes(digest[:4], "big") % dimensions] += 1.0
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm else vector


def draft(user_text: str) -> str:
    _, found, after = user_text.rpartition("Notes:")
    notes = (after if found else user_text).strip()
    title_words = _WORD.findall(notes)[:6]
    title = " ".join(title_words).capitalize() or "Untitled"
    return f"Title: {title}\n\nDescription: {notes}"


def answer(user_text: str, listings: list[tuple[str, str]]) -> str:
    _, found, after = user_text.rpartition("Question:")
    question = set(words(after if found else _LISTING.sub("", user_text)))
    cited = [
        (listing_id, sorted(question & set(words(text))))
        for listing_id, text in listings
        if question & set(words(text))
    ]
    if not cited:
        return "None of the listings answer that."
    parts = [f"[{listing_id}] (matches: {', '.join(shared)})" for listing_id, shared in cited]
    return "These listings match your question: " + "; ".join(parts) + "."


def _message_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, ...]
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def _usage(prompt: str, completion: str) -> dict[str, int]:
    prompt_tokens, completion_tokens = len(_WORD.findall(prompt)), len(_WORD.findall(completion))
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


class BadRequest(Exception):
    pass


class AiServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, key: str, log: Path | None, fail_status: int | None) -> None:
        super().__init__((HOST, port), Handler)
        self.key = key
        self.log = log
        self.fail_status = fail_status
        self._log_lock = threading.Lock()

    def record(self, path: str, authorized: bool, model: str | None) -> None:
        if self.log is None:
            return
        line = json.dumps({"path": path, "authorized": authorized, "model": model})
        with self._log_lock, self.log.open("a", encoding="utf-8") as out:
            out.write(line + "\n")


class Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 with keep-alive, as the SDK's connection pool expects of a real server.
    protocol_version = "HTTP/1.1"
    server: AiServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request on stderr would drown test output

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        path = self.path.split("?", 1)[0]
        body: Any = None
        if method == "POST":
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self.close_connection = True
                self._error(413, "Request too large.", "invalid_request_error", None)
                return
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
        model = body.get("model") if isinstance(body, dict) else None
        given = self.headers.get("Authorization", "")
        authorized = given == f"Bearer {self.server.key}"
        self.server.record(path, authorized, model if isinstance(model, str) else None)
        if not authorized:
            supplied = given.removeprefix("Bearer ").strip()
            # OpenAI echoes (part of) the wrong key: the worst case for a client that passes
            # upstream messages on, which is what the tests check the node does not do.
            message = (
                f"Incorrect API key provided: {supplied}."
                if supplied
                else "You didn't provide an API key."
            )
            self._error(401, message, "invalid_request_error", "invalid_api_key")
            return
        try:
            if (method, path) == ("GET", "/v1/models"):
                self._models()
            elif (method, path) == ("POST", "/v1/chat/completions"):
                self._fail_or(lambda: self._chat(self._object(body)))
            elif (method, path) == ("POST", "/v1/embeddings"):
                self._fail_or(lambda: self._embeddings(self._object(body)))
            else:
                self._error(404, f"Invalid URL ({method} {path})", "invalid_request_error", None)
        except BadRequest as exc:
            self._error(400, str(exc), "invalid_request_error", None)

    @staticmethod
    def _object(body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise BadRequest("We could not parse the JSON body of your request.")
        if not isinstance(body.get("model"), str) or not body["model"]:
            raise BadRequest("you must provide a model parameter")
        return body

    def _fail_or(self, handle: Any) -> None:
        status = self.server.fail_status
        if status is None:
            handle()
        elif status == 429:
            self._error(
                429,
                "You exceeded your current quota, please check your plan and billing details.",
                "insufficient_quota",
                "insufficient_quota",
            )
        elif status >= 500:
            self._error(status, "The server had an error processing your request.", "server_error")
        else:
            self._error(status, "Request refused by the test server.", "invalid_request_error")

    def _models(self) -> None:
        created = int(time.time())
        data = [
            {"id": name, "object": "model", "created": created, "owned_by": "zion-tests"}
            for name in MODELS
        ]
        self._json(200, {"object": "list", "data": data})

    def _chat(self, body: dict[str, Any]) -> None:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest("messages must be a non-empty array")
        prompt = ""
        user_text = ""
        for message in messages:
            if not isinstance(message, dict) or "role" not in message:
                raise BadRequest("every message needs a role")
            text = _message_text(message.get("content"))
            prompt += text + "\n"
            if message["role"] == "user":
                user_text = text
        listings = _LISTING.findall(user_text)
        text = answer(user_text, listings) if listings else draft(user_text)
        finish = "stop"
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        pieces = re.findall(r"\S+\s*", text)
        if isinstance(limit, int) and 0 < limit < len(pieces):
            text, finish = "".join(pieces[:limit]).rstrip(), "length"
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        if body.get("stream"):
            options = body.get("stream_options")
            usage = isinstance(options, dict) and bool(options.get("include_usage"))
            self._stream(completion_id, body["model"], text, finish, _usage(prompt, text), usage)
            return
        self._json(
            200,
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "system_fingerprint": None,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text, "refusal": None},
                        "logprobs": None,
                        "finish_reason": finish,
                    }
                ],
                "usage": _usage(prompt, text),
            },
        )

    def _stream(
        self,
        completion_id: str,
        model: str,
        text: str,
        finish: str,
        usage: dict[str, int],
        include_usage: bool,
    ) -> None:
        def chunk(delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
            out: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "system_fingerprint": None,
                "choices": [
                    {
                        "index": 0,
                        "delta": delta,
                        "logprobs": None,
                        "finish_reason": finish_reason,
                    }
                ],
            }
            if include_usage:
                out["usage"] = None
            return out

        pieces = re.findall(r"\S+\s*", text)
        events: list[Any] = [chunk({"role": "assistant", "content": ""}, None)]
        for start in range(0, len(pieces), WORDS_PER_CHUNK):
            events.append(
                chunk({"content": "".join(pieces[start : start + WORDS_PER_CHUNK])}, None)
            )
        events.append(chunk({}, finish))
        if include_usage:
            last = chunk({}, None)
            last["choices"] = []
            last["usage"] = usage
            events.append(last)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-request-id", f"req_{uuid.uuid4().hex}")
        self.end_headers()
        for event in [*events, "[DONE]"]:
            data = event if isinstance(event, str) else json.dumps(event)
            self._chunk(f"data: {data}\n\n".encode())
        self._chunk(b"")

    def _chunk(self, data: bytes) -> None:
        # Flushed one by one, so the client sees deltas arrive separately, as from a model.
        self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _embeddings(self, body: dict[str, Any]) -> None:
        given = body.get("input")
        texts = [given] if isinstance(given, str) else given
        if not isinstance(texts, list) or not texts:
            raise BadRequest("input must be a string or a non-empty array of strings")
        if not all(isinstance(text, str) for text in texts):
            raise BadRequest("this test server embeds text input only, not tokens")
        if any(not text for text in texts):
            raise BadRequest("'$.input' is invalid: an input is empty")
        dimensions = body.get("dimensions", DIMENSIONS)
        if not isinstance(dimensions, int) or not 1 <= dimensions <= 4096:
            raise BadRequest("dimensions must be an integer from 1 to 4096")
        encoding = body.get("encoding_format", "float")
        if encoding not in ("float", "base64"):
            raise BadRequest("encoding_format must be 'float' or 'base64'")
        data = []
        for index, text in enumerate(texts):
            vector = embedding(text, dimensions)
            value: Any = vector
            if encoding == "base64":
                value = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": value})
        tokens = sum(len(_WORD.findall(text)) for text in texts)
        self._json(
            200,
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    def _error(self, status: int, message: str, kind: str, code: str | None = None) -> None:
        headers = {}
        if status == 429 or status >= 500:
            headers["retry-after-ms"] = str(RETRY_AFTER_MS)
        error = {"message": message, "type": kind, "param": None, "code": code}
        self._json(status, {"error": error}, headers)

    def _json(self, status: int, value: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", f"req_{uuid.uuid4().hex}")
        for name, value_ in (headers or {}).items():
            self.send_header(name, value_)
        self.end_headers()
        self.wfile.write(data)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--key", required=True)
    parser.add_argument("--log", type=Path)
    parser.add_argument("--fail-status", type=int)
    args = parser.parse_args(argv)
    server = AiServer(args.port, args.key, args.log, args.fail_status)
    # `zion devnet` stops its children with SIGTERM: the same quiet exit as Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupt)
    print(f"listening http://{HOST}:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextmanager
def running_ai_server(
    key: str, *, fail_status: int | None = None, log: Path | None = None
) -> Iterator[str]:
    """Run the server in a subprocess; yield its base URL (``http://127.0.0.1:PORT/v1``)."""
    args = ["--port", "0", "--key", key]
    if fail_status is not None:
        args += ["--fail-status", str(fail_status)]
    if log is not None:
        args += ["--log", str(log)]
    with running_module("zion.devtools.ai_server", *args, what="the AI test server") as url:
        yield f"{url}/v1"


if __name__ == "__main__":
    main()
