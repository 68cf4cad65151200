"""A small threaded HTTP server for fake vendor APIs, built on `http.server`.

Each fake records every request it receives, so tests can count effects, and can be
set to fail the next requests with a given status. A fake stops itself after
`lifetime_seconds` even if a test forgets to stop it.
"""

from __future__ import annotations

import base64
import json
import logging
import ssl
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

logger = logging.getLogger(__name__)

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class RecordedCall:
    """One request as the fake received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """Return the body parsed as JSON."""
        return json.loads(self.body)

    def param(self, name: str) -> str | None:
        """Return the first value of query parameter `name`."""
        values = self.query.get(name)
        return values[0] if values else None

    def basic_auth(self) -> tuple[str, str] | None:
        """Return the (user, password) of a Basic Authorization header."""
        scheme, _, encoded = self.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        user, _, password = base64.b64decode(encoded).decode().partition(":")
        return user, password


@dataclass
class FakeResponse:
    """The response of a fake to one request."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_response(
    status: int, document: Any, headers: dict[str, str] | None = None
) -> FakeResponse:
    """Return a JSON response."""
    merged = {"Content-Type": "application/json;charset=UTF-8", **(headers or {})}
    return FakeResponse(status, json.dumps(document).encode(), merged)


@dataclass
class _Failure:
    response: FakeResponse
    method: str | None


class FakeServer:
    """Base class of the fakes: subclasses implement `handle`."""

    def __init__(
        self,
        *,
        lifetime_seconds: float = 120.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.calls: list[RecordedCall] = []
        self._failures: deque[_Failure] = deque()
        self._lock = threading.Lock()
        self._lifetime_seconds = lifetime_seconds
        self._ssl_context = ssl_context
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._watchdog: threading.Timer | None = None

    # Lifecycle

    def start(self) -> Self:
        """Bind a free port on 127.0.0.1 and serve in a daemon thread."""
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        if self._ssl_context is not None:
            server.socket = self._ssl_context.wrap_socket(
                server.socket, server_side=True
            )
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            # A short poll interval keeps stop() fast (shutdown waits one interval).
            kwargs={"poll_interval": 0.05},
            name=type(self).__name__,
            daemon=True,
        )
        self._thread.start()
        self._watchdog = threading.Timer(self._lifetime_seconds, self.stop)
        self._watchdog.daemon = True
        self._watchdog.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket; safe to call twice."""
        with self._lock:
            server, self._server = self._server, None
        if self._watchdog is not None:
            self._watchdog.cancel()
        if server is not None:
            server.shutdown()
            server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """Return the bound port."""
        if self._server is None:
            raise RuntimeError("the fake server is not running; call start() first")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Return the base URL, http or https."""
        scheme = "https" if self._ssl_context is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    # Test controls

    def fail_next(
        self,
        status: int,
        *,
        times: int = 1,
        document: Any = None,
        headers: dict[str, str] | None = None,
        method: str | None = None,
    ) -> None:
        """Fail the next `times` requests (of `method`, if given) with `status`."""
        response = json_response(status, document or {"error": "injected"}, headers)
        with self._lock:
            for _ in range(times):
                self._failures.append(_Failure(response, method))

    def calls_to(self, method: str, path_part: str = "") -> list[RecordedCall]:
        """Return the recorded calls of `method` whose path contains `path_part`."""
        with self._lock:
            return [
                call
                for call in self.calls
                if call.method == method and path_part in call.path
            ]

    def writes(self) -> list[RecordedCall]:
        """Return the recorded POST, PUT, PATCH and DELETE calls."""
        with self._lock:
            return [call for call in self.calls if call.method in WRITE_METHODS]

    # Request handling

    def dispatch(self, call: RecordedCall) -> FakeResponse:
        """Record the call, then return an injected failure or the `handle` response."""
        with self._lock:
            self.calls.append(call)
            failure = self._take_failure(call.method)
        if failure is not None:
            return failure
        try:
            return self.handle(call)
        except Exception:
            logger.exception(
                "Fake %s failed on %s %s", type(self).__name__, call.method, call.path
            )
            return json_response(500, {"error": "the fake server raised"})

    def _take_failure(self, method: str) -> FakeResponse | None:
        for failure in self._failures:
            if failure.method in (None, method):
                self._failures.remove(failure)
                return failure.response
        return None

    def handle(self, call: RecordedCall) -> FakeResponse:
        """Return the response to one request; subclasses implement the endpoints."""
        raise NotImplementedError


def _handler_for(fake: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two sends; without TCP_NODELAY each keep-alive
        # response waits about 40 ms for the client's delayed ACK.
        disable_nagle_algorithm = True

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            call = RecordedCall(
                method=self.command,
                path=parts.path,
                query=parse_qs(parts.query, keep_blank_values=True),
                headers={name.lower(): value for name, value in self.headers.items()},
                body=body,
            )
            response = fake.dispatch(call)
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("%s %s", type(fake).__name__, format % args)

    return Handler
