"""The local HTTP server: each request becomes an API Gateway REST proxy event for the handler.

It plays the part of API Gateway in front of the Lambda handler, so `citas serve` runs exactly
the code that is deployed: the same event shape (payload v1), the same `x-api-key` check with
the gateway's `403 {"message": "Forbidden"}`, and the same response mapping.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import socket
import socketserver
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs

from entrypoints.context import LocalContext
from entrypoints.local.proxy_event import proxy_event

LambdaHandler = Callable[[dict[str, Any], Any], Mapping[str, Any]]
# (method, path) -> what the access log may say of them: the route template and ids.
RouteDescriber = Callable[[str, str], Mapping[str, str]]


@attrs.frozen
class PrefixRoute:
    """Paths starting with `prefix` go to `handler`; `needs_key`: behind the API key check."""

    prefix: str
    handler: LambdaHandler
    needs_key: bool
    template: str


# The server refuses bigger bodies without reading them; smaller ones reach the handler,
# which enforces the contract's 16 KiB limit itself (as it must on AWS).
MAX_BODY_BYTES = 1024 * 1024
FUNCTION_NAME = "citas-http-api-local"
# After refusing a body, read and drop what the client still sends for at most this long
# before closing, so it sees the 413 instead of a connection reset.
_LINGER_SECONDS = 2.0
_LINGER_BYTES = 16 * MAX_BODY_BYTES
_HOP_BY_HOP = frozenset({"connection", "content-length", "transfer-encoding", "keep-alive"})
_FORBIDDEN = {"message": "Forbidden"}
_GATEWAY_ERROR = {"message": "Internal server error"}

access_log = logging.getLogger("local.access")
log = logging.getLogger("local.server")


def _error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": {}}}


class LocalApiServer(ThreadingHTTPServer):
    """A threading HTTP server in front of one Lambda proxy handler."""

    daemon_threads = True
    # Many clients connect at once in the concurrency tests; don't drop their SYNs.
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        handler: LambdaHandler,
        api_keys: Mapping[str, str],
        *,
        max_body_bytes: int = MAX_BODY_BYTES,
        describe: RouteDescriber | None = None,
        routes: Sequence[PrefixRoute] = (),
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.lambda_handler = handler
        # Paths API Gateway sends to other functions (the patients' pages) or that only the
        # local server has (`/_local/inbound`), by prefix; the rest goes to `handler`.
        self.routes = tuple(routes)
        self.describe = describe
        # Key value -> the key id API Gateway would put in the event.
        self.api_keys = dict(api_keys)
        self.max_body_bytes = max_body_bytes
        super().__init__(address, ProxyRequestHandler)

    def server_bind(self) -> None:
        """Bind without the reverse DNS lookup `HTTPServer` does (slow on some machines)."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    @property
    def url(self) -> str:
        """The base URL clients use, with the port actually bound."""
        host, port = str(self.server_address[0]), self.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log an unexpected error of a connection as one JSON line, without request data."""
        log.exception("connection error")


class ProxyRequestHandler(BaseHTTPRequestHandler):
    """Turns one HTTP request into a proxy event, calls the handler, writes its answer."""

    server: LocalApiServer
    protocol_version = "HTTP/1.1"
    server_version = "citas-local"
    # Headers and body go out in two writes; with Nagle's algorithm and delayed ACKs every
    # keep-alive request would wait ~40 ms for the second one.
    disable_nagle_algorithm = True
    sys_version = ""
    # An idle keep-alive connection gives up its thread after this many seconds.
    timeout = 60

    _started: float
    _request_id: str
    _logged: bool
    # Bytes of a refused body the client may still be sending when the answer goes out.
    _pending_linger: int | None = None

    def version_string(self) -> str:
        """The `Server` header."""
        return self.server_version

    def __getattr__(self, name: str) -> Any:
        """Route every method (`do_GET`, `do_TRACE`, ...) to the handler, which answers 405."""
        if name.startswith("do_"):
            return self._forward
        raise AttributeError(name)

    # Request life cycle ------------------------------------------------------------------

    def parse_request(self) -> bool:
        """Start the clock and the request id, then parse the request line and headers."""
        self._begin()
        return super().parse_request()

    def _begin(self) -> None:
        self._started = time.perf_counter()
        self._request_id = str(uuid.uuid4())
        self._logged = False
        self._pending_linger = None

    def handle_expect_100(self) -> bool:
        """Refuse an announced oversized body before the client sends it."""
        length = self._content_length()
        if length is not None and length > self.server.max_body_bytes:
            self._refuse_too_large(linger=False)
            return False
        return super().handle_expect_100()

    def _route(self) -> PrefixRoute | None:
        path = self.path.split("?", 1)[0]
        return next((r for r in self.server.routes if path.startswith(r.prefix)), None)

    def _forward(self) -> None:
        route = self._route()
        key_id = self._api_key_id()
        if key_id is None and (route is None or route.needs_key):
            self._discard_body()
            self._send_json(
                HTTPStatus.FORBIDDEN, _FORBIDDEN, {"x-amzn-ErrorType": "ForbiddenException"}
            )
            if self._pending_linger is not None:
                self._linger(self._pending_linger)
            return
        body = self._read_body()
        if body is None:
            return
        context = LocalContext(
            aws_request_id=self._request_id, function_name=FUNCTION_NAME, timeout_seconds=30.0
        )
        event = proxy_event(
            method=self.command,
            target=self.path,
            headers=self.headers.items(),
            body=body,
            source_ip=str(self.client_address[0]),
            request_id=self._request_id,
            api_key_id=key_id,
        )
        handler = route.handler if route is not None else self.server.lambda_handler
        try:
            result = handler(event, context)
            status, headers, payload = _lambda_response(result)
        except Exception:
            # API Gateway's answer to a failed invocation or a malformed proxy response.
            log.exception("handler failed", extra={"fields": {"request_id": self._request_id}})
            self._send_json(HTTPStatus.BAD_GATEWAY, _GATEWAY_ERROR)
            return
        self._send(status, headers, payload)

    def _api_key_id(self) -> str | None:
        """The id of the configured key the request carries, as API Gateway finds it, or None."""
        given = self.headers.get_all("x-api-key") or []
        if not given:
            return None
        found = None
        for key, key_id in self.server.api_keys.items():
            # Every key compared, in constant time each: the answer's timing names none.
            if hmac.compare_digest(given[-1].encode(), key.encode()):
                found = key_id
        return found

    # Bodies --------------------------------------------------------------------------

    def _content_length(self) -> int | None:
        raw = self.headers.get("Content-Length")
        if raw is None:
            return None
        try:
            length = int(raw.strip())
        except ValueError:
            return -1
        return length

    def _read_body(self) -> bytes | None:
        """The request body, or None after answering an error for it."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        length = self._content_length()
        if length is None or length == 0:
            return b""
        if length < 0:
            self.close_connection = True
            self._send_json(
                HTTPStatus.BAD_REQUEST,
                _error_body("validation_error", "Content-Length is not a valid length"),
            )
            return None
        if length > self.server.max_body_bytes:
            self._refuse_too_large(linger=True, announced=length)
            return None
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes | None:
        limit = self.server.max_body_bytes
        chunks: list[bytes] = []
        total = 0
        try:
            while True:
                size_line = self.rfile.readline(1024)
                size = int(size_line.split(b";", 1)[0].strip() or b"x", 16)
                if size == 0:
                    # Trailer headers, up to the empty line.
                    while self.rfile.readline(1024).strip():
                        pass
                    return b"".join(chunks)
                total += size
                if total > limit:
                    self._refuse_too_large(linger=True, announced=None)
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline(8)  # the CRLF after the chunk
        except ValueError:
            self.close_connection = True
            self._send_json(
                HTTPStatus.BAD_REQUEST,
                _error_body("validation_error", "malformed chunked body"),
            )
            return None

    def _discard_body(self) -> None:
        """Skip a small body left unread; close the connection rather than read a big one."""
        length = self._content_length()
        chunked = "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
        if chunked or (length is not None and length < 0):
            self.close_connection = True
        elif length is not None and length > self.server.max_body_bytes:
            self.close_connection = True
            self._pending_linger = length
        elif length:
            self.rfile.read(length)

    def _refuse_too_large(self, *, linger: bool, announced: int | None = None) -> None:
        self.close_connection = True
        limit = self.server.max_body_bytes
        self._send_json(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            _error_body("payload_too_large", f"body over {limit} bytes"),
        )
        if linger:
            self._linger(announced)

    def _linger(self, announced: int | None) -> None:
        """Drop what the client still sends for a moment, so it can read our answer."""
        budget = min(announced if announced is not None else _LINGER_BYTES, _LINGER_BYTES)
        deadline = time.monotonic() + _LINGER_SECONDS
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            while budget > 0 and time.monotonic() < deadline:
                self.connection.settimeout(max(0.05, deadline - time.monotonic()))
                data = self.connection.recv(min(65536, budget))
                if not data:
                    break
                budget -= len(data)
        except OSError:
            pass

    # Responses -----------------------------------------------------------------------

    def _send_json(
        self, status: int, payload: Mapping[str, Any], extra: Mapping[str, str] | None = None
    ) -> None:
        headers = [("Content-Type", "application/json")]
        headers.extend((extra or {}).items())
        self._send(status, headers, json.dumps(payload).encode())

    def _send(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
        try:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
            self.wfile.flush()
        finally:
            self._access(status)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Answer a protocol-level error (bad request line, header too long) in JSON."""
        if not hasattr(self, "_started"):
            self._begin()
        self.close_connection = True
        # Never echo the request line: it may carry a query string with a phone number.
        phrase = HTTPStatus(code).phrase if code in HTTPStatus._value2member_map_ else "Error"
        self._send_json(code, _error_body("validation_error", phrase))

    def _access(self, status: int) -> None:
        if getattr(self, "_logged", False):
            return
        self._logged = True
        # The route template and ids, never the raw path: a client may put a phone or a name
        # in it. Without a describer the line names no path at all.
        method = str(getattr(self, "command", None) or "")
        path = (getattr(self, "path", None) or "").partition("?")[0]
        routed = self._route() if getattr(self, "path", None) else None
        request: Mapping[str, str] = (
            {"method": method, "route": routed.template}
            if routed is not None
            else self.server.describe(method, path)
            if self.server.describe
            else {"method": method}
        )
        access_log.info(
            "request",
            extra={
                "fields": {
                    **request,
                    "status": int(status),
                    "duration_ms": round((time.perf_counter() - self._started) * 1000, 2),
                    "request_id": self._request_id,
                }
            },
        )

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Silence the default access line: `_access` writes the JSON one."""

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr lines: they would contain the raw request line."""


def _lambda_response(result: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body of a Lambda proxy response, merged as API Gateway does."""
    if not isinstance(result, Mapping):
        raise TypeError("the handler did not return a proxy response object")
    status = int(result["statusCode"])
    headers: list[tuple[str, str]] = []
    multi = result.get("multiValueHeaders") or {}
    for name, values in multi.items():
        if name.lower() in _HOP_BY_HOP:
            continue
        headers.extend((name, str(v)) for v in values)
    from_multi = {name.lower() for name in multi}
    for name, value in (result.get("headers") or {}).items():
        if name.lower() in _HOP_BY_HOP or name.lower() in from_multi:
            continue
        headers.append((name, str(value)))
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/json"))
    body = result.get("body")
    if body is None:
        payload = b""
    elif result.get("isBase64Encoded"):
        payload = base64.b64decode(body)
    else:
        payload = str(body).encode("utf-8")
    return status, headers, payload
