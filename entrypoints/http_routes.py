"""The HTTP API's own route table, and the one log line of each request.

Powertools keeps its route table private, so the handler registers each route here as well:
for the 405 answer, for the OpenAPI check, and for logs that name the route template, never
the path a client sent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import attrs

from domain.errors import CitasError
from entrypoints import http_mapping as http
from entrypoints.observability import logger


@attrs.frozen
class Route:
    """One served operation: its method, its path rule and the pattern that matches paths."""

    method: str
    path: str
    rule: re.Pattern[str]


# The pattern Powertools compiles for an APIGatewayRestResolver rule: `<name>` matches one
# segment of URI characters, and trailing slashes are ignored.
_SEGMENT = r"(?P\1[-._~()'!*:@,;=+&$%<> \[\]{}|^\\w]+)"
ROUTES: list[Route] = []


def route_rule(path: str) -> re.Pattern[str]:
    """The pattern matching the paths of a resolver rule like `/doctors/<doctor_id>`."""
    return re.compile("^{}/*$".format(re.sub(r"(<\w+>)", _SEGMENT, path)))


def template(rule: str) -> str:
    """`/doctors/<doctor_id>` as OpenAPI and API Gateway write it: `/doctors/{doctor_id}`."""
    return re.sub(r"<(\w+)>", r"{\1}", rule)


def log_request(event: Mapping[str, Any], response: Mapping[str, Any]) -> None:
    """One line per request: route, status, ids and error code; nothing a patient told us."""
    status = int(response.get("statusCode", 500))
    fields: dict[str, Any] = {
        **route_fields(str(event.get("httpMethod", "")), str(event.get("path", ""))),
        "status": status,
    }
    if status >= 400:
        error = _response_payload(response).get("error")
        fields["error_code"] = error.get("code") if isinstance(error, dict) else None
    else:
        # A created resource names itself in Location; no need to parse the body (hot path).
        location = (response.get("multiValueHeaders") or {}).get("Location") or [""]
        kind, _, created = location[0].rpartition("/")
        if created and kind in ("/appointments", "/appointment-requests"):
            name = "appointment_id" if kind == "/appointments" else "request_id"
            fields[name] = created
    if status == 500:
        logger.error("request failed", extra=fields)
    elif status > 500:
        logger.warning("request refused", extra=fields)
    else:
        logger.info("request handled", extra=fields)


def route_fields(method: str, path: str) -> dict[str, str]:
    """What a log line may say of a request line: method, route template and well-formed ids.

    Never the path itself: a client can put anything in it (a phone, a name), and a log
    line must not carry it. A path no route serves is logged as `unmatched`.
    """
    method = method.upper()
    fields = {"method": method if method.isascii() and method.isalpha() else "other"}
    for route in ROUTES:
        found = route.rule.match(path) if route.method == method else None
        if found:
            fields["route"] = template(route.path)
            fields.update(
                (name, value) for name, value in found.groupdict().items() if _is_id(name, value)
            )
            return fields
    fields["route"] = "unmatched"
    return fields


def _is_id(name: str, value: object) -> bool:
    """Whether a path parameter is a well-formed id, and so safe to log as one."""
    # Only the ids a request is traced by: a time-off id or a country is left out.
    try:
        if name == "doctor_id":
            http.doctor_id(value)
        elif name in ("appointment_id", "request_id"):
            http.uuid_id(value, name)
        else:
            return False
    except CitasError:
        return False
    return True


def _response_payload(response: Mapping[str, Any]) -> dict[str, Any]:
    try:
        payload = json.loads(response.get("body") or "{}")
    except (TypeError, ValueError):
        return {}
    return payload if isinstance(payload, dict) else {}
