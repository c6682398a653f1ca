"""An OpenAI-compatible chat-completions server on 127.0.0.1 for tests and benchmarks.

Replies are scripted per model (a queue, or a function of the request); usage figures are
deterministic so cost assertions can be exact. Every request is recorded.
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
)  # text, or {"content": ..., "prompt_tokens": ..., "completion_tokens": ..., "status": ...}


@dataclass
class FakeOpenAI:
    default: Reply | Callable[[dict[str, Any]], Reply] = "ok"
    delay: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)
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
        self.default = "ok"

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
                self._send(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with fake._lock:
                    fake.requests.append(body)
                if fake.delay:
                    time.sleep(fake.delay)
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

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
