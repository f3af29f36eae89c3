"""Breakable AWS clients: record every call, and fail a chosen one the way AWS fails.

A `Breaker` is a botocore event handler. Registered on `before-call.<service>` it records each
API call (botocore's own retries are not calls) and raises the armed fault on the n-th call of
one operation, before anything is sent: what the caller sees once botocore's retries are spent.
Registered on `after-call.<service>` it raises after the call went through: an answer lost on
the way back, the write committed. `answer_once` builds a `before-send` handler that answers
one request with an AWS error (or a timeout), so that botocore's retry loop runs for real.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError, ReadTimeoutError

Fault = Callable[[str], Exception]


def client_error(code: str, status: int) -> Fault:
    """A fault raising the `ClientError` AWS answers with `code` and HTTP `status`."""

    def fault(operation: str) -> Exception:
        return ClientError(
            {
                "Error": {"Code": code, "Message": f"injected {code} (internal detail)"},
                "ResponseMetadata": {"HTTPStatusCode": status},
            },
            operation,
        )

    return fault


def read_timeout(operation: str) -> Exception:
    """What botocore raises when the answer does not come in time."""
    return ReadTimeoutError(endpoint_url=f"http://aws.invalid/{operation}")


# Throttled, down (5xx) and silent: the three ways a backend is temporarily unavailable.
FAULTS: dict[str, Fault] = {
    "throttling": client_error("ThrottlingException", 400),
    "service-unavailable": client_error("ServiceUnavailable", 503),
    "internal-server-error": client_error("InternalServerError", 500),
    "read-timeout": read_timeout,
}


class Breaker:
    """Records API calls in order and raises the armed fault on the n-th call of one operation."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.fired = 0
        self._armed: tuple[str, int, Fault] | None = None

    def arm(self, operation: str, nth: int, fault: Fault) -> None:
        """Fail the `nth` (1-based) call of `operation` from now on; forget earlier calls."""
        self.calls.clear()
        self.fired = 0
        self._armed = (operation, nth, fault)

    def disarm(self) -> None:
        """Let every call through again."""
        self._armed = None

    def record(self) -> list[str]:
        """Start recording afresh; returns the (live) list of calls."""
        self.calls.clear()
        return self.calls

    def before_call(self, model: Any, **_: Any) -> None:
        """`before-call.<service>`: record the call, then fail it if it is the armed one."""
        self.calls.append(model.name)
        self._maybe_fail(model.name)

    def after_call(self, model: Any, **_: Any) -> None:
        """`after-call.<service>`: the call went through; fail it if it is the armed one."""
        self.calls.append(model.name)
        self._maybe_fail(model.name)

    def _maybe_fail(self, operation: str) -> None:
        if self._armed is None:
            return
        armed_operation, nth, fault = self._armed
        if operation == armed_operation and self.calls.count(operation) == nth:
            self.fired += 1
            raise fault(operation)


class _Body:
    """The body of a canned HTTP answer, as botocore reads it."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def answer_once(kind: str, sent: list[str]) -> Callable[..., AWSResponse | None]:
    """A `before-send` handler that fails the first request (`kind`: a key of FAULTS), then
    lets every request through; each request it sees is appended to `sent`."""

    def handler(request: Any, **_: Any) -> AWSResponse | None:
        sent.append(request.headers["X-Amz-Target"].decode().rsplit(".", 1)[-1])
        if len(sent) > 1:
            return None
        if kind == "read-timeout":
            raise ReadTimeoutError(endpoint_url=request.url)
        code, status = {
            "throttling": ("ThrottlingException", 400),
            "service-unavailable": ("ServiceUnavailable", 503),
            "internal-server-error": ("InternalServerError", 500),
        }[kind]
        body = json.dumps(
            {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": "injected"}
        ).encode()
        headers = {"content-type": "application/x-amz-json-1.0"}
        return AWSResponse(request.url, status, headers, _Body(body))  # type: ignore[arg-type]

    return handler
