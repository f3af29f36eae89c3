"""The floor of a Powertools REST handler, for bench/warm.py: a bare resolver and its event."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

BARE_RESOLVER = (
    "a bare Powertools APIGatewayRestResolver(debug=False) with one route, GET /ping "
    "answering {'ok': True}: no Logger, no Metrics, no clinic lookup, no use case. Each call "
    "gets that iteration's handler event routed to /ping (the same headers, query string, body "
    "and request context), timed in the same loop as handler and use case"
)


def bare_resolver() -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The floor of any Powertools REST handler: a resolver answering a constant."""
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver

    app = APIGatewayRestResolver(debug=False)

    @app.get("/ping")
    def ping() -> dict[str, bool]:
        return {"ok": True}

    return app.resolve


def ping_event(event: dict[str, Any]) -> dict[str, Any]:
    """`event` routed to GET /ping: its headers, query, body and context otherwise kept."""
    context = dict(event.get("requestContext") or {})
    stage = context.get("stage")
    context.update(
        httpMethod="GET", resourcePath="/ping", path=f"/{stage}/ping" if stage else "/ping"
    )
    return {
        **event,
        "resource": "/ping",
        "path": "/ping",
        "httpMethod": "GET",
        "pathParameters": None,
        "requestContext": context,
    }
