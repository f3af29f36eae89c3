"""Realistic API Gateway REST (payload v1) proxy events, and a tiny client over a handler."""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import attrs
import yaml

from entrypoints.context import LocalContext

OPENAPI = Path(__file__).resolve().parents[2] / "api" / "openapi.yaml"
API_KEY = "local-dev-key"
# The id the default `demo` clinic's key has (`entrypoints.config.LocalClinic.api_key_id`).
API_KEY_ID = "local-demo"
STAGE = "prod"
API_ID = "a1b2c3d4e5"


@cache
def resource_templates() -> tuple[str, ...]:
    """The path templates of the API, as API Gateway names resources (`/doctors/{doctor_id}`)."""
    document = yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))
    return tuple(document["paths"])


def _resource_of(path: str) -> tuple[str, dict[str, str] | None]:
    for template in resource_templates():
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
        match = re.fullmatch(pattern, path)
        if match:
            return template, (match.groupdict() or None)
    # A greedy proxy resource catches everything else, as a `{proxy+}` route would.
    return "/{proxy+}", {"proxy": path.lstrip("/")}


def event(
    method: str,
    path: str,
    *,
    body: object = None,
    headers: Mapping[str, str | list[str]] | None = None,
    query: Mapping[str, str | list[str]] | None = None,
    base64_body: bool = False,
    api_key: str | None = API_KEY,
) -> dict[str, Any]:
    """An API Gateway REST proxy event for `method path` with a JSON (or raw string) body."""
    all_headers: dict[str, list[str]] = {
        "Accept": ["application/json"],
        "Host": [f"{API_ID}.execute-api.us-east-1.amazonaws.com"],
        "User-Agent": ["pytest"],
        "X-Amzn-Trace-Id": ["Root=1-5e1b4151-5ac6c58f5b5dbd6a5e2f3b1c"],
        "X-Forwarded-For": ["203.0.113.7"],
        "X-Forwarded-Port": ["443"],
        "X-Forwarded-Proto": ["https"],
    }
    if api_key is not None:
        all_headers["x-api-key"] = [api_key]
    raw_body: str | None
    if body is None:
        raw_body = None
    elif isinstance(body, str):
        raw_body = body
    else:
        raw_body = json.dumps(body, ensure_ascii=False)
    if raw_body is not None:
        all_headers["Content-Type"] = ["application/json"]
        if base64_body:
            raw_body = base64.b64encode(raw_body.encode("utf-8")).decode("ascii")
    for name, value in (headers or {}).items():
        all_headers[name] = [value] if isinstance(value, str) else list(value)
    multi_query = {k: [v] if isinstance(v, str) else list(v) for k, v in (query or {}).items()}
    resource, path_parameters = _resource_of(path)
    request_id = str(uuid.uuid4())
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": {k: v[-1] for k, v in all_headers.items()},
        "multiValueHeaders": all_headers,
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": API_ID,
            "domainName": f"{API_ID}.execute-api.us-east-1.amazonaws.com",
            "extendedRequestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "httpMethod": method,
            "identity": {
                "apiKey": api_key,
                "apiKeyId": API_KEY_ID,
                "sourceIp": "203.0.113.7",
                "userAgent": "pytest",
            },
            "path": f"/{STAGE}{path}",
            "protocol": "HTTP/1.1",
            "requestId": request_id,
            "requestTime": "07/Jan/2030:14:00:00 +0000",
            "requestTimeEpoch": 1894024800000,
            "resourceId": "abc123",
            "resourcePath": resource,
            "stage": STAGE,
        },
        "body": raw_body,
        "isBase64Encoded": base64_body and raw_body is not None,
    }


# What Lambda passes as `context`: the one local stand-in, enough for Powertools.
FakeLambdaContext = LocalContext


@attrs.frozen
class Reply:
    """A proxy response, read back."""

    status: int
    headers: Mapping[str, str]
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text)

    def header(self, name: str) -> str | None:
        return {k.lower(): v for k, v in self.headers.items()}.get(name.lower())

    @property
    def error_code(self) -> str:
        return str(self.json["error"]["code"])


Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@attrs.define
class Client:
    """Calls a handler in process, like API Gateway would, and reads the answer."""

    handler: Handler

    def call(self, method: str, path: str, **kwargs: Any) -> Reply:
        response = self.handler(event(method, path, **kwargs), FakeLambdaContext())
        multi = response.get("multiValueHeaders") or {}
        headers = {k: ", ".join(v) for k, v in multi.items()}
        headers.update(response.get("headers") or {})
        body = response.get("body") or ""
        if response.get("isBase64Encoded"):
            body = base64.b64decode(body).decode("utf-8")
        return Reply(int(response["statusCode"]), headers, body)

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.call("GET", path, **kwargs)

    def put(self, path: str, body: object = None, **kwargs: Any) -> Reply:
        return self.call("PUT", path, body=body, **kwargs)

    def post(self, path: str, body: object = None, **kwargs: Any) -> Reply:
        return self.call("POST", path, body=body, **kwargs)

    def patch(self, path: str, body: object = None, **kwargs: Any) -> Reply:
        return self.call("PATCH", path, body=body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Reply:
        return self.call("DELETE", path, **kwargs)
