"""The API Gateway REST proxy event (payload v1) the local server makes of one HTTP request.

The same shape API Gateway gives the deployed function: the handler cannot tell them apart.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

STAGE = "local"
RESOURCE = "/{proxy+}"


def proxy_event(
    *,
    method: str,
    target: str,
    headers: Iterable[tuple[str, str]],
    body: bytes | None,
    source_ip: str,
    request_id: str,
    api_key_id: str | None = None,
) -> dict[str, Any]:
    """The API Gateway REST proxy (payload v1) event of one HTTP request."""
    raw_path, _, query = target.partition("?")
    path = raw_path or "/"
    single_headers, multi_headers = _single_and_multi(headers)
    # Like API Gateway: the path stays percent-encoded, parameters are decoded.
    single_query, multi_query = _single_and_multi(parse_qsl(query, keep_blank_values=True))
    text, encoded = _event_body(body)
    now = datetime.now(UTC)
    return {
        "resource": RESOURCE,
        "path": path,
        "httpMethod": method,
        "headers": single_headers or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": single_query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": {"proxy": unquote(path.lstrip("/"))} if path != "/" else None,
        "stageVariables": None,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "resourceId": "local",
            "resourcePath": RESOURCE,
            "httpMethod": method,
            "path": path,
            "protocol": "HTTP/1.1",
            "stage": STAGE,
            "requestId": request_id,
            "extendedRequestId": request_id,
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "domainName": single_headers.get("Host") or single_headers.get("host") or "local",
            # As API Gateway fills it for a key of a usage plan: the handler maps the id to
            # the clinic.
            "identity": {
                "apiKeyId": api_key_id,
                "sourceIp": source_ip,
                "userAgent": _header(single_headers, "user-agent"),
            },
        },
        "body": text,
        "isBase64Encoded": encoded,
    }


def _single_and_multi(
    pairs: Iterable[tuple[str, str]],
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Name -> last value, and name -> every value: the two forms API Gateway gives both."""
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        single[name] = value
        multi.setdefault(name, []).append(value)
    return single, multi


def _event_body(body: bytes | None) -> tuple[str | None, bool]:
    if not body:
        return None, False
    try:
        return body.decode("utf-8"), False
    except UnicodeDecodeError:
        # Not text: hand it over the way API Gateway hands over binary bodies.
        return base64.b64encode(body).decode("ascii"), True


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None
