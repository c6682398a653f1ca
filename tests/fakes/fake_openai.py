"""An OpenAI-compatible chat-completions server on 127.0.0.1 for tests and benchmarks.

Replies are scripted per model (a queue, or a function of the request); usage figures are
deterministic so cost assertions can be exact. Every request is recorded.

Requests with `"stream": true` get server-sent events: one chunk per `chunk_chars` characters, one every
`token_interval` seconds (a model that emits tokens at a fixed rate), then a usage chunk when
`stream_options.include_usage` asks for it; a reply with `fail_after: N` sends OpenAI's in-stream error
event after N chunks instead of the rest. `first_chunk_at` / `last_chunk_at` record (monotonic) when
each stream's first and last text chunk left, keyed by request number.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = (
    str | dict[str, Any]
)  # text, or {"content": ..., "prompt_tokens": ..., "completion_tokens": ..., "status": ..., "fail_after": ...}


def _opened() -> threading.Event:
    gate = threading.Event()
    gate.set()
    return gate


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # socketserver's default backlog (5) resets a burst of concurrent calls


@dataclass
class FakeOpenAI:
    default: Reply | Callable[[dict[str, Any]], Reply] = "ok"
    delay: float = 0.0
    token_interval: float = 0.0  # seconds between streamed chunks
    chunk_chars: int = 4  # characters per streamed chunk (about one token)
    requests: list[dict[str, Any]] = field(default_factory=list)
    first_chunk_at: dict[int, float] = field(default_factory=dict)
    last_chunk_at: dict[int, float] = field(default_factory=dict)
    disconnected: list[int] = field(default_factory=list)  # streams the client closed early
    # Cleared: every call is recorded, then held until it is set again (a model call that is
    # certainly in flight when a test kills its client, however slow the machine); a streamed
    # reply is held after `hold_after_chunks` chunks.
    gate: threading.Event = field(default_factory=_opened)
    hold_after_chunks: int = 0
    _queues: dict[str, deque[Reply]] = field(default_factory=lambda: defaultdict(deque))
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def script(self, model: str, *replies: Reply) -> None:
        """Queue replies for a model name (as sent, e.g. 'cheap-model'); '*' matches any model."""
        with self._lock:
            self._queues[model].extend(replies)

    def reset(self) -> None:
        """Forget scripts, requests and settings (a shared server between tests)."""
        with self._lock:
            self.requests.clear()
            self._queues.clear()
        self.delay = 0.0
        self.gate.set()
        self.hold_after_chunks = 0
        self.token_interval = 0.0
        self.chunk_chars = 4
        self.default = "ok"
        self.first_chunk_at.clear()
        self.last_chunk_at.clear()
        self.disconnected.clear()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def _next(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            for key in (body.get("model", ""), "*"):
                if self._queues.get(key):
                    return self._queues[key].popleft()
        return self.default(body) if callable(self.default) else self.default

    def __enter__(self) -> FakeOpenAI:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/_stats"):  # for a server in another process
                    with fake._lock:
                        stats = {
                            "requests": list(fake.requests),
                            "first_chunk_at": fake.first_chunk_at,
                            "last_chunk_at": fake.last_chunk_at,
                        }
                    self._send(200, json.loads(json.dumps(stats)))
                    return
                self._send(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with fake._lock:
                    fake.requests.append(body)
                    number = len(fake.requests)
                if fake.delay:
                    time.sleep(fake.delay)
                if not (body.get("stream") and fake.hold_after_chunks):
                    fake.gate.wait()
                reply = fake._next(body)
                spec = {"content": reply} if isinstance(reply, str) else dict(reply)
                if spec.get("status", 200) != 200:
                    self._send(
                        spec["status"],
                        {"error": {"message": spec.get("content", "error"), "type": "server_error"}},
                    )
                    return
                if spec.get("sleep"):
                    time.sleep(spec["sleep"])
                prompt_text = " ".join(str(m.get("content", "")) for m in body.get("messages", []))
                prompt_tokens = spec.get("prompt_tokens", max(1, len(prompt_text.split())))
                completion_tokens = spec.get("completion_tokens", max(1, len(spec["content"].split())))
                if body.get("stream"):
                    usage = (body.get("stream_options") or {}).get("include_usage")
                    self._stream(
                        body,
                        number,
                        spec["content"],
                        (prompt_tokens, completion_tokens),
                        usage,
                        spec.get("fail_after"),
                    )
                    return
                if fake.token_interval:  # unstreamed: the same generation time, then the whole text
                    fake.first_chunk_at[number] = time.monotonic()
                    pieces = -(-len(spec["content"]) // max(1, fake.chunk_chars))
                    time.sleep(fake.token_interval * max(0, pieces - 1))
                    fake.last_chunk_at[number] = time.monotonic()
                self._send(
                    200,
                    {
                        "id": f"chatcmpl-{len(fake.requests)}",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body.get("model", "fake"),
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": spec["content"]},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {
                            "prompt_tokens": prompt_tokens,
                            "completion_tokens": completion_tokens,
                            "total_tokens": prompt_tokens + completion_tokens,
                        },
                    },
                )

            def _stream(
                self,
                body: dict[str, Any],
                number: int,
                text: str,
                usage: tuple[int, int],
                with_usage: Any,
                fail_after: int | None = None,
            ) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                base = {
                    "id": f"chatcmpl-{number}",
                    "object": "chat.completion.chunk",
                    "created": int(time.time()),
                    "model": body.get("model", "fake"),
                }
                size = max(1, fake.chunk_chars)
                pieces = [text[i : i + size] for i in range(0, len(text), size)]
                try:
                    for i, piece in enumerate(pieces):
                        if i == fail_after:  # a provider failing mid-answer: OpenAI's in-stream error event
                            self._event(
                                {"error": {"message": "the model broke down", "type": "server_error"}}
                            )
                            self.wfile.write(b"data: [DONE]\n\n")
                            return
                        if i and i == fake.hold_after_chunks:
                            fake.gate.wait()
                        if i and fake.token_interval:
                            time.sleep(fake.token_interval)
                        delta = {"role": "assistant", "content": piece} if i == 0 else {"content": piece}
                        choice = {"index": 0, "delta": delta, "finish_reason": None}
                        self._event({**base, "choices": [choice]})
                        now = time.monotonic()
                        fake.first_chunk_at.setdefault(number, now)
                        fake.last_chunk_at[number] = now
                    self._event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
                    if with_usage:
                        prompt, completion = usage
                        counts = {
                            "prompt_tokens": prompt,
                            "completion_tokens": completion,
                            "total_tokens": prompt + completion,
                        }
                        self._event({**base, "choices": [], "usage": counts})
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    fake.disconnected.append(number)

            def _event(self, payload: dict[str, Any]) -> None:
                self.wfile.write(b"data: " + json.dumps(payload).encode() + b"\n\n")
                self.wfile.flush()

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def serve_forever() -> None:
    """`python -m tests.fakes.fake_openai TEXT TOKEN_INTERVAL CHUNK_CHARS`: serve in this process (a
    benchmark's model, apart from the bot's process); prints the URL, then runs until killed."""
    import sys

    text, interval, chars = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    with FakeOpenAI(default=text, token_interval=interval, chunk_chars=chars) as server:
        print(server.url, flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    serve_forever()
