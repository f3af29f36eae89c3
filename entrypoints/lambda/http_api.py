"""Lambda handler of the citas HTTP API: API Gateway REST proxy events (payload v1).

Each route parses the request into a command (`entrypoints.http_mapping`), calls one `Clinic`
use case and renders the result. Logs are one JSON object per line and carry ids, route,
status and error code only: never a request body, a patient's name, phone or document.

`lambda` is a keyword, so load this module with
`importlib.import_module("entrypoints.lambda.http_api")`; its handler string is
`entrypoints.lambda.http_api.handler`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

from domain.clinics import ClinicProfile
from domain.commands import ListDoctorDay
from domain.errors import CitasError, NotFound, TemporarilyUnavailable
from domain.use_cases import Clinic
from entrypoints import http_mapping as http
from entrypoints.bootstrap import AppSource, LazyApp
from entrypoints.context import LocalContext
from entrypoints.http_routes import (
    APP_KEY,
    CLINIC_KEY,
    ROUTES,
    appointment_response,
    clinic_of,
    json_response,
    log_request,
    request_of,
    route_fields,
    route_registrar,
    serve_waitlist,
    template,
)
from entrypoints.observability import SERVICE as SERVICE
from entrypoints.observability import logger, metrics

# `citas serve` names each request's route in its access log with `route_fields`.
__all__ = ["ROUTES", "app", "handler", "make_handler", "route_fields", "served_routes"]

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]
# debug=False explicitly: POWERTOOLS_DEV would otherwise print whole events (patient data
# included) and put stack traces in 500 bodies.
app = APIGatewayRestResolver(debug=False)
# Powertools keeps the current event on the resolver class, so two requests must never be
# resolved at once. A Lambda process serves one request at a time anyway; this only matters
# to an in-process server that calls the handler from several threads.
_one_at_a_time = threading.Lock()
# What API Gateway answers a request without a valid key; also a key of no clinic here.
FORBIDDEN: Final = {"message": "Forbidden"}


def _request() -> http.HttpRequest:
    return request_of(app)


def _clinic() -> Clinic:
    return clinic_of(app)


_route = route_registrar(app, ROUTES)
_json = json_response
_appointment = appointment_response


@contextmanager
def _booking_outcome(operation: str, success: str) -> Iterator[None]:
    """Count one booking attempt by outcome: `success`, or the error code it ended with."""
    outcome = "internal_error"
    try:
        yield
        outcome = success
    except CitasError as e:
        outcome = e.code
        raise
    finally:
        metrics.add_dimension(name="operation", value=operation)
        metrics.add_dimension(name="outcome", value=outcome)
        metrics.add_metric(name="BookingOutcome", unit=MetricUnit.Count, value=1)


# The caller's clinic ------------------------------------------------------------------------


@_route("GET", "/clinic")
def get_clinic() -> Response[str]:
    """Which clinic the API key belongs to: its id and display name."""
    http.no_query(_request())
    profile: ClinicProfile = app.context[CLINIC_KEY]
    return _json(200, profile.to_dict())


# Doctors -----------------------------------------------------------------------------------


@_route("PUT", "/doctors/<doctor_id>")
def put_doctor(doctor_id: str) -> Response[str]:
    """Create (201) or replace (200) a doctor."""
    doctor, created = _clinic().register_doctor(http.register_doctor(doctor_id, _request()))
    return _json(201 if created else 200, http.doctor_json(doctor))


@_route("GET", "/doctors/<doctor_id>")
def get_doctor(doctor_id: str) -> Response[str]:
    """One doctor."""
    doctor_id = http.doctor_id(doctor_id)
    http.no_query(_request())
    return _json(200, http.doctor_json(_clinic().doctor(doctor_id)))


@_route("GET", "/doctors/<doctor_id>/availability")
def get_availability(doctor_id: str) -> Response[str]:
    """A doctor's free slots on a local date."""
    doctor_id = http.doctor_id(doctor_id)
    day = http.availability_date(_request())
    return _json(200, http.availability_json(_clinic().availability(doctor_id, day)))


# Time off and national holidays -------------------------------------------------------------


@_route("PUT", "/doctors/<doctor_id>/time-off/<time_off_id>")
def put_time_off(doctor_id: str, time_off_id: str) -> Response[str]:
    """Create (201) or replace (200) a block of a doctor's time off."""
    result = _clinic().put_time_off(http.put_time_off(doctor_id, time_off_id, _request()))
    # The doctor the change was judged on: no read after the write, which could fail.
    body = http.time_off_json(result.block, result.doctor)
    return _json(201 if result.created else 200, body)


@_route("GET", "/doctors/<doctor_id>/time-off")
def list_time_off(doctor_id: str) -> Response[str]:
    """A doctor's time off overlapping a range of local dates."""
    doctor, page = _clinic().list_time_off(http.list_time_off(doctor_id, _request()))
    return _json(200, http.time_off_list_json(doctor, page))


@_route("DELETE", "/doctors/<doctor_id>/time-off/<time_off_id>")
def remove_time_off(doctor_id: str, time_off_id: str) -> Response[str]:
    """Remove a block of time off: its time is bookable again."""
    result = _clinic().remove_time_off(http.remove_time_off(doctor_id, time_off_id, _request()))
    return _json(200, http.time_off_json(result.block, result.doctor))


@_route("GET", "/holidays/<country>")
def get_holidays(country: str) -> Response[str]:
    """The national public holidays citas applies for a country in a year."""
    code, year = http.holidays_query(country, _request())
    found_year, holidays = _clinic().national_holidays(code, year)
    return _json(200, http.holidays_json(code, found_year, holidays))


# Appointments ------------------------------------------------------------------------------


@_route("POST", "/appointments")
def book() -> Response[str]:
    """Book at once: 201 with `Location`."""
    with _booking_outcome("book", "booked"):
        request = _request()
        command = http.book_appointment(request)
        appointment = _clinic().book(command, http.idempotency_key(request))
    location = f"/appointments/{appointment.appointment_id}"
    return _appointment(201, appointment, {"Location": location})


@_route("GET", "/appointments")
def list_appointments() -> Response[str]:
    """A doctor's day, or a country's appointments in a status."""
    query = http.list_query(_request())
    if isinstance(query, ListDoctorDay):
        result = _clinic().list_doctor_day(query)
    else:
        result = _clinic().list_by_country_status(query)
    return _json(200, http.list_json(result))


@_route("GET", "/appointments/<appointment_id>")
def get_appointment(appointment_id: str) -> Response[str]:
    """One appointment."""
    appointment_id = http.uuid_id(appointment_id, "appointment_id")
    http.no_query(_request())
    return _appointment(200, _clinic().get(appointment_id))


@_route("PATCH", "/appointments/<appointment_id>")
def reschedule(appointment_id: str) -> Response[str]:
    """Move an appointment to another time."""
    command = http.reschedule(appointment_id, _request())
    return _appointment(200, _clinic().reschedule(command))


@_route("POST", "/appointments/<appointment_id>/status")
def change_status(appointment_id: str) -> Response[str]:
    """Confirm, cancel, complete or mark a no-show."""
    command = http.change_status(appointment_id, _request())
    return _appointment(200, _clinic().change_status(command))


@_route("DELETE", "/appointments/<appointment_id>")
def cancel(appointment_id: str) -> Response[str]:
    """Cancel and free the time; the record stays."""
    command = http.cancel(appointment_id, _request())
    return _appointment(200, _clinic().cancel(command))


# Asynchronous booking requests -------------------------------------------------------------


@_route("POST", "/appointment-requests")
def request_booking() -> Response[str]:
    """Accept a booking for the country's worker: 202."""
    with _booking_outcome("request_booking", "accepted"):
        command = http.book_appointment(_request())
        accepted = _clinic().request_booking(command)
    location = f"/appointment-requests/{accepted.request_id}"
    return _json(202, http.request_accepted_json(accepted), {"Location": location})


@_route("GET", "/appointment-requests/<request_id>")
def get_booking_request(request_id: str) -> Response[str]:
    """The state of a booking request."""
    request_id = http.uuid_id(request_id, "request_id")
    http.no_query(_request())
    return _json(200, http.booking_request_json(_clinic().booking_request(request_id)))


# The waitlist's routes (`entrypoints.http_routes`): POST/GET /waitlist, /waitlist/{id}, ...
serve_waitlist(app)


# Errors ------------------------------------------------------------------------------------


def _error(error: CitasError, headers: Mapping[str, str] | None = None) -> Response[str]:
    status = http.error_status(error)
    extra = dict(headers or {})
    if isinstance(error, TemporarilyUnavailable):
        extra["Retry-After"] = str(max(0, int(error.retry_after_seconds)))
    return _json(status, http.error_json(error.code, error.message, error.details), extra)


def on_citas_error(error: CitasError) -> Response[str]:
    """A refusal the contract names: its status and code."""
    return _error(error)


def on_unexpected_error(error: Exception) -> Response[str]:
    """Anything else: a bare 500, the details only in the log."""
    logger.exception("unexpected error", extra={"error_type": type(error).__name__})
    return _json(500, http.INTERNAL_ERROR)


# Registered by call: Powertools' `exception_handler` decorator is untyped.
app.exception_handler(CitasError)(on_citas_error)
app.exception_handler(Exception)(on_unexpected_error)


@app.not_found
def on_no_route(_: NotFoundError) -> Response[str]:
    """404 for an unknown path, 405 for a known path with another method."""
    method = app.current_event.http_method.upper()
    path = app.current_event.path
    allowed = sorted({r.method for r in ROUTES if r.rule.match(path)})
    if allowed:
        error: CitasError = http.MethodNotAllowed(
            f"{method} is not allowed here", allowed=allowed, method=method
        )
        return _error(error, {"Allow": ", ".join(allowed)})
    return _error(NotFound("no such resource", path=path))


def served_routes() -> set[tuple[str, str]]:
    """Every (method, path template) the resolver serves, templates as in OpenAPI (`{id}`)."""
    return {(r.method, template(r.path)) for r in ROUTES}


# Handler -----------------------------------------------------------------------------------


def make_handler(source: AppSource) -> LambdaHandler:
    """The HTTP API's Lambda handler, running on the app `source` returns."""

    @logger.inject_lambda_context(
        correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False, clear_state=True
    )
    @metrics.log_metrics(raise_on_empty_metrics=False, capture_cold_start_metric=True)
    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        # The source, not the app: a misconfigured function then fails as a 500 of a route.
        app.context[APP_KEY] = source
        if not isinstance(event.get("requestContext"), Mapping):
            # Not an API Gateway event at all: nothing to map a key from.
            logger.error("malformed event", extra={"error_type": "MalformedEvent"})
            return _finish(event, _proxy(500, http.INTERNAL_ERROR))
        try:
            clinic = http.caller_clinic(event, source().clinics)
        except TemporarilyUnavailable as e:  # the clinics could not be read
            return _finish(event, _error_response(e))
        except Exception as e:  # the app cannot be built: a misconfigured function
            logger.exception("unexpected error", extra={"error_type": type(e).__name__})
            return _finish(event, _proxy(500, http.INTERNAL_ERROR))
        if clinic is None:
            # A key the gateway let through but that stands for no clinic this deployment
            # serves: answered as the gateway answers a wrong key, and nothing runs.
            return _finish(event, _proxy(403, FORBIDDEN))
        app.context[CLINIC_KEY] = clinic
        logger.append_keys(clinic_id=clinic.clinic_id)
        return _respond(event, context)

    def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        """One API Gateway REST proxy event in, one proxy response out."""
        with _one_at_a_time:
            response: dict[str, Any] = handle(
                event, context if context is not None else LocalContext()
            )
        return response

    return handler


def _proxy(
    status: int, payload: object, headers: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A proxy response made without the resolver (it cannot, or must not, run)."""
    multi = {"Content-Type": [http.CONTENT_TYPE]}
    multi.update({name: [value] for name, value in (headers or {}).items()})
    return {
        "statusCode": status,
        "body": http.dumps(payload),
        "isBase64Encoded": False,
        "multiValueHeaders": multi,
    }


def _error_response(error: CitasError) -> dict[str, Any]:
    response = _error(error)
    headers = {k: v for k, v in response.headers.items() if isinstance(v, str)}
    return _proxy(response.status_code, json.loads(str(response.body)), headers)


def _respond(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        response = app.resolve(event, context)
    except Exception as e:  # the resolver itself failed, e.g. on a malformed event
        logger.exception("unexpected error", extra={"error_type": type(e).__name__})
        response = _proxy(500, http.INTERNAL_ERROR)
    return _finish(event, response)


def _finish(event: Mapping[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    # REST proxy responses carry headers in `multiValueHeaders`; mirror them in `headers` for
    # callers that only read the single-value form (API Gateway merges the two).
    multi = response.get("multiValueHeaders") or {}
    response["headers"] = {name: ", ".join(values) for name, values in multi.items()}
    log_request(event, response)
    return response


# Built on the first request, from the environment.
default_app = LazyApp()
handler = make_handler(default_app)
