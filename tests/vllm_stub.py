"""A stand-in for `vllm serve` (its OpenAI-compatible chat endpoint) on loopback, for the backend tests.

vLLM itself runs only on GPU nodes; this server records every request and answers from a queue of
replies (or one fixed reply), so what we send and how the answer is parsed are checked for real."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any


@dataclass
class VllmStub:
    url: str
    answers: list[str] = field(default_factory=list)  # replies, answered in order
    bodies: list[dict[str, Any]] = field(default_factory=list)  # each request's JSON body
    paths: list[str] = field(default_factory=list)  # and its path


@contextmanager
def vllm_stub(answer: str | None = None, *, prompt_tokens: int = 9, completion_tokens: int = 1) -> Iterator[VllmStub]:
    """A running stub: it answers queued ``stub.answers`` first, then ``answer`` (if given)."""
    stub = VllmStub(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            stub.paths.append(self.path)
            stub.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            content = stub.answers.pop(0) if stub.answers else answer
            reply = {
                "choices": [{"message": {"role": "assistant", "content": content}}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens},
            }
            data = json.dumps(reply, ensure_ascii=False).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    stub.url = f"http://127.0.0.1:{server.server_port}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
