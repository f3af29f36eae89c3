"""The HTTP API's own route table, the one log line of each request, and the waitlist's routes.

Powertools keeps its route table private, so the handler registers each route here as well:
for the 405 answer, for the OpenAPI check, and for logs that name the route template, never
the path a client sent.

The waitlist's routes are a Powertools `Router` the handler includes (`serve_waitlist`): each
parses the request (`entrypoints.http_mapping`), calls one `Clinic` use case and renders it,
as the handler's own routes do.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, TypeVar

import attrs
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from domain.appointment import Appointment
from domain.errors import CitasError
from domain.waitlist import WaitlistEntry, WaitStatus
from entrypoints import http_mapping as http
from entrypoints.observability import logger

if TYPE_CHECKING:
    from domain.clinics import ClinicProfile
    from domain.use_cases import Clinic
    from entrypoints.bootstrap import AppSource


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
        if created and kind in _CREATED:
            fields[_CREATED[kind]] = created
    if status == 500:
        logger.error("request failed", extra=fields)
    elif status > 500:
        logger.warning("request refused", extra=fields)
    else:
        logger.info("request handled", extra=fields)


# The collections whose new members a `Location` names, and the log field of each one's id.
_CREATED: Final = {
    "/appointments": "appointment_id",
    "/appointment-requests": "request_id",
    "/waitlist": "waitlist_id",
}


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
        elif name in ("appointment_id", "request_id", "waitlist_id"):
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


# The waitlist ------------------------------------------------------------------------------

# The routing-context keys under which the handler puts, for each request, the source of its
# app and the caller's clinic (the resolver clears them after each request).
APP_KEY: Final = "citas_app"
CLINIC_KEY: Final = "citas_clinic"

# Powertools leaves `Router.__init__` unannotated.
waitlist_routes = Router()  # type: ignore[no-untyped-call]
_WAITLIST_ROUTES: list[Route] = []
_Handler = TypeVar("_Handler", bound=Callable[..., Response[str]])


def serve_waitlist(app: APIGatewayRestResolver) -> None:
    """Serve the waitlist's routes on `app`, and list them in `ROUTES`."""
    ROUTES.extend(r for r in _WAITLIST_ROUTES if r not in ROUTES)
    app.include_router(waitlist_routes)


# The resolver of the HTTP function, or a router whose routes it includes.
Resolver = APIGatewayRestResolver | Router


def route_registrar(
    resolver: Resolver, routes: list[Route]
) -> Callable[[str, str], Callable[[_Handler], _Handler]]:
    """A decorator factory registering a route with `resolver` and listing it in `routes`."""

    def route(method: str, path: str) -> Callable[[_Handler], _Handler]:
        rule = route_rule(path)

        def register(function: _Handler) -> _Handler:
            routes.append(Route(method, path, rule))
            resolver.route(path, method)(function)
            return function

        return register

    return route


def clinic_of(resolver: Resolver) -> Clinic:
    """The use cases of the clinic whose API key made the request `resolver` is resolving."""
    source: AppSource = resolver.context[APP_KEY]
    profile: ClinicProfile = resolver.context[CLINIC_KEY]
    return source().for_clinic(profile.clinic_id)


def request_of(resolver: Resolver) -> http.HttpRequest:
    """The request `resolver` is resolving, as citas reads it."""
    return http.HttpRequest.from_event(resolver.current_event.raw_event)


def json_response(
    status: int, payload: object, headers: Mapping[str, str] | None = None
) -> Response[str]:
    """A JSON answer of the API."""
    return Response(
        status_code=status,
        content_type=http.CONTENT_TYPE,
        body=http.dumps(payload),
        headers=dict(headers or {}),
    )


def appointment_response(
    status: int, appointment: Appointment, headers: Mapping[str, str] | None = None
) -> Response[str]:
    """An appointment as the API answers it, with its `ETag`."""
    body = http.appointment_json(appointment)
    return json_response(status, body, {"ETag": http.etag(appointment), **(headers or {})})


_route = route_registrar(waitlist_routes, _WAITLIST_ROUTES)
_json = json_response
_appointment = appointment_response


def _clinic() -> Clinic:
    return clinic_of(waitlist_routes)


def _request() -> http.HttpRequest:
    return request_of(waitlist_routes)


def _entry(
    status: int, clinic: Clinic, entry: WaitlistEntry, headers: Mapping[str, str] | None = None
) -> Response[str]:
    return _json(status, http.waitlist_json(entry, clinic.ports.now()), headers)


def _target(waitlist_id: str) -> tuple[str, Clinic]:
    """The entry a `/waitlist/{waitlist_id}` action names, and the clinic to act on."""
    waitlist_id = http.waitlist_id(waitlist_id)
    request = _request()
    http.no_query(request)
    http.no_body(request)
    return waitlist_id, _clinic()


@_route("POST", "/waitlist")
def join_waitlist() -> Response[str]:
    """Put a patient on a doctor's waitlist: 201 with `Location`."""
    command = http.join_waitlist(_request())
    clinic = _clinic()
    entry = clinic.join_waitlist(command)
    return _entry(201, clinic, entry, {"Location": f"/waitlist/{entry.waitlist_id}"})


@_route("GET", "/waitlist")
def list_waitlist() -> Response[str]:
    """A doctor's waitlist, oldest first."""
    command = http.list_waitlist(_request())
    clinic = _clinic()
    _, page = clinic.list_waitlist(command)
    return _json(200, http.waitlist_list_json(page, clinic.ports.now()))


@_route("GET", "/waitlist/<waitlist_id>")
def get_waitlist_entry(waitlist_id: str) -> Response[str]:
    """One waitlist entry."""
    waitlist_id = http.waitlist_id(waitlist_id)
    http.no_query(_request())
    clinic = _clinic()
    return _entry(200, clinic, clinic.waitlist_entry(waitlist_id))


@_route("DELETE", "/waitlist/<waitlist_id>")
def withdraw_from_waitlist(waitlist_id: str) -> Response[str]:
    """Take an entry off the waitlist (a held slot is freed); repeatable."""
    waitlist_id, clinic = _target(waitlist_id)
    return _entry(200, clinic, clinic.withdraw_from_waitlist(waitlist_id))


@_route("POST", "/waitlist/<waitlist_id>/accept")
def accept_offer(waitlist_id: str) -> Response[str]:
    """Book the entry's offer as a confirmed appointment: 201, or 200 when repeated."""
    waitlist_id, clinic = _target(waitlist_id)
    # Read first: the use case answers a repeat with the booking it made, as a first accept.
    repeated = clinic.waitlist_entry(waitlist_id).status is WaitStatus.BOOKED
    _, appointment = clinic.accept_offer(waitlist_id)
    if repeated:
        return _appointment(200, appointment)
    location = f"/appointments/{appointment.appointment_id}"
    return _appointment(201, appointment, {"Location": location})


@_route("POST", "/waitlist/<waitlist_id>/decline")
def decline_offer(waitlist_id: str) -> Response[str]:
    """Let the entry's offer go: it waits again; repeating it is harmless."""
    waitlist_id, clinic = _target(waitlist_id)
    return _entry(200, clinic, clinic.decline_offer(waitlist_id))
