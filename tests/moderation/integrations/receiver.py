"""A webhook receiver on 127.0.0.1 for tests: records every request, answers what it is told."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    def __init__(self, answer: Callable[[int], int] = lambda n: 200) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answer = answer  # request number (1-based) -> HTTP status
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.hold_first = False
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append({"headers": dict(self.headers), "body": body})
                n = len(receiver.requests)
                receiver.arrived.set()
                if receiver.hold_first and n == 1:
                    receiver.release.wait(30)
                    return  # the sender is gone by now
                self.send_response(receiver.answer(n))
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
