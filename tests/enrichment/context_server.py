"""A local JSON server for enricher tests that can respond, hang, fail or hang up."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

# Seconds a hanging response waits at most, so a test can never hang for good.
MAX_HANG_SECONDS = 5.0


class ContextServer:
    """Serve `documents[path]` as JSON on 127.0.0.1, or misbehave as `mode` selects.

    Modes: "ok", "hang" (wait `hang_seconds`, then respond), "close" (drop the
    connection without a response) and "error" (HTTP 500).
    """

    def __init__(self) -> None:
        self.documents: dict[str, Any] = {}
        self.mode = "ok"
        self.hang_seconds = MAX_HANG_SECONDS
        self.requests: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        # Shutting down must not wait for a hanging response to finish.
        self._server.block_on_close = False
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Return the base URL."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def record(self, path: str, headers: dict[str, str]) -> None:
        """Note one request."""
        with self._lock:
            self.requests.append({"path": path, **headers})

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(owner: ContextServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
            owner.record(
                self.path, {"authorization": self.headers.get("Authorization", "")}
            )
            if owner.mode == "close":
                self.close_connection = True
                self.connection.close()
                return
            if owner.mode == "hang":
                time.sleep(min(owner.hang_seconds, MAX_HANG_SECONDS))
            if owner.mode == "error":
                self._send(500, {"error": "boom"})
                return
            document = owner.documents.get(self.path.split("?")[0])
            if document is None:
                self._send(404, {"error": "not found"})
                return
            self._send(200, document)

        def _send(self, status: int, document: Any) -> None:
            body = json.dumps(document).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler
