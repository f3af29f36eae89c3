"""HTTP edge of citas: strict parsing of requests into commands, and JSON rendering of results.

Kept apart from the Lambda handler so the handler stays a list of one-line routes, and so
any other HTTP front end can reuse the exact same rules. Everything here follows
`api/openapi.yaml`: unknown or missing fields, wrong types (a boolean is not an integer, a
float is not an integer), naive or date-only instants and malformed ids are `400
validation_error`, naming the field in `details.field`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, NoReturn
from zoneinfo import ZoneInfo

from attrs import frozen

from domain.appointment import Appointment, Patient, Status
from domain.booking_request import BookingRequest
from domain.commands import (
    BookAppointment,
    CancelAppointment,
    ChangeStatus,
    ListByCountryStatus,
    ListDoctorDay,
    RegisterDoctor,
    RescheduleAppointment,
)
from domain.errors import CitasError, ValidationError
from domain.schedule import ALLOWED_SLOT_MINUTES, MAX_DURATION_MINUTES, WEEKDAYS, Doctor
from domain.text import bad_character, check_text, is_scalar_text, matches, pattern
from domain.use_cases import MAX_PAGE, Availability, ListResult

MAX_BODY_BYTES = 16 * 1024
DEFAULT_PAGE = 50
CONTENT_TYPE = "application/json; charset=utf-8"
# The smallest duration the API admits; anything that is not a multiple of the doctor's slot
# is then refused by the domain as `invalid_slot`.
MIN_DURATION_MINUTES = 5
MAX_TEXT = 500
MAX_NAME = 200
MAX_RANGES_PER_DAY = 8
# Instants outside these bounds cannot be a visit and would overflow date arithmetic.
_EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
_LATEST = datetime(9000, 1, 1, tzinfo=UTC)

# Every pattern is ASCII (`[0-9]`, never `\d`) and applied with `matches` (fullmatch): see
# domain.text for the two defects that rule closes.
_DOCTOR_ID = pattern(r"[A-Za-z0-9_-]{1,64}")
_UUID = pattern(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_COUNTRY = pattern(r"[A-Z]{2}")
_DATE = pattern(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_INSTANT = pattern(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[Tt](?P<time>[0-9]{2}:[0-9]{2}(?::[0-9]{2})?)"
    r"(?P<fraction>\.[0-9]+)?(?P<offset>[Zz]|[+-][0-9]{2}:[0-9]{2})?"
)
_LIMIT = pattern(r"[0-9]{1,3}")
_IF_MATCH = pattern(r'W/"(?P<weak>[0-9]{1,18})"|"(?P<quoted>[0-9]{1,18})"|(?P<bare>[0-9]{1,18})')
_SETTABLE_STATUSES = tuple(str(s) for s in Status if s is not Status.REQUESTED)

STATUS_OF_CODE: Mapping[str, int] = {
    "validation_error": 400,
    "not_found": 404,
    "method_not_allowed": 405,
    "slot_unavailable": 409,
    "patient_double_booked": 409,
    "invalid_transition": 409,
    "time_zone_conflict": 409,
    "version_conflict": 412,
    "payload_too_large": 413,
    "start_in_past": 422,
    "outside_working_hours": 422,
    "invalid_slot": 422,
    "idempotency_key_reused": 422,
    "temporarily_unavailable": 503,
}


class PayloadTooLarge(CitasError):
    """The request body is over the API's limit."""

    code = "payload_too_large"


class MethodNotAllowed(CitasError):
    """The path exists but does not take that method."""

    code = "method_not_allowed"


# Requests ----------------------------------------------------------------------------------


@frozen
class HttpRequest:
    """The parts of an API Gateway REST (v1) proxy event citas reads; header names lowercased."""

    method: str
    path: str
    headers: Mapping[str, tuple[str, ...]]
    query: Mapping[str, tuple[str, ...]]
    body: bytes | None

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> HttpRequest:
        """Read a proxy event; a body over 16 KiB raises PayloadTooLarge."""
        path = str(event.get("path") or "/")
        # The router's patterns end in `$`, which matches before a final newline: a path with
        # a control character would reach a route as the path without it.
        if bad_character(path) is not None:  # surrogates included
            _invalid("the path holds a character that is not allowed", "path")
        return cls(
            method=str(event.get("httpMethod") or "").upper(),
            path=path,
            headers=_multi(event.get("headers"), event.get("multiValueHeaders"), lower=True),
            query=_multi(
                event.get("queryStringParameters"),
                event.get("multiValueQueryStringParameters"),
                lower=False,
            ),
            body=_body(event.get("body"), bool(event.get("isBase64Encoded"))),
        )

    def header(self, name: str) -> str | None:
        """The one value of header `name` (any case), None if absent; repeated is a 400."""
        values = self.headers.get(name.lower(), ())
        if len(values) > 1:
            _invalid(f"header {name} must be sent once", name)
        return values[0] if values else None


def _multi(
    single: Mapping[str, str | None] | None,
    multi: Mapping[str, Sequence[str] | None] | None,
    *,
    lower: bool,
) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    # API Gateway fills both; the multi-value form is the complete one.
    if multi:
        for name, values in multi.items():
            key = name.lower() if lower else name
            out.setdefault(key, []).extend(v for v in values or () if v is not None)
    elif single:
        for name, value in single.items():
            key = name.lower() if lower else name
            if value is not None:
                out.setdefault(key, []).append(value)
    for key, values in out.items():
        # A name or value that is not Unicode text (a lone surrogate in the event's JSON) can
        # only be a forgery; refused here, it can reach neither a use case nor a response.
        if not is_scalar_text(key) or not all(is_scalar_text(v) for v in values):
            _invalid("a header or query parameter is not valid Unicode text", "query")
    return {k: tuple(v) for k, v in out.items()}


def _body(body: object, is_base64: bool) -> bytes | None:
    if body is None:
        return None
    if not isinstance(body, str):
        _invalid("body must be text", "body")
    if is_base64:
        # Four base64 characters carry three bytes: refuse the obviously large before decoding.
        if len(body) > (MAX_BODY_BYTES + 2) // 3 * 4 + 4:
            _too_large()
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            _invalid("body is not valid base64", "body")
    else:
        if len(body) > MAX_BODY_BYTES:  # each character is at least one byte
            _too_large()
        try:
            raw = body.encode("utf-8")
        except UnicodeEncodeError:
            _invalid("body is not valid UTF-8", "body")
    if len(raw) > MAX_BODY_BYTES:
        _too_large()
    return raw


def _too_large() -> NoReturn:
    raise PayloadTooLarge(
        f"the request body is over {MAX_BODY_BYTES} bytes", limit_bytes=MAX_BODY_BYTES
    )


def _invalid(message: str, field: str) -> NoReturn:
    raise ValidationError(message, field=field)


def json_object(request: HttpRequest) -> dict[str, Any]:
    """The body as a JSON object; empty, malformed or non-object bodies are a 400."""
    if not request.body:
        _invalid("a JSON object body is required", "body")
    try:
        text = request.body.decode("utf-8")
        parsed = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        _invalid("the body is not valid JSON", "body")
    if not isinstance(parsed, dict):
        _invalid("the body must be a JSON object", "body")
    _require_scalar_text(parsed, "")
    return parsed


def _require_scalar_text(value: object, where: str) -> None:
    r"""Refuse a body holding a lone surrogate (`"\ud800"`) in any key or string, at any depth.

    JSON can spell one, Python keeps it, and no UTF-8 encoder writes it back: stored, it would
    break every response containing it. So it never gets past the parser.
    """
    if isinstance(value, str):
        if not is_scalar_text(value):
            _invalid(f"{where or 'body'} is not valid Unicode text", where or "body")
    elif isinstance(value, dict):
        for key, item in value.items():
            # The key's own place: a bad key is never echoed as the field name.
            if not is_scalar_text(key):
                place = where or "body"
                _invalid(f"a key in {place} is not valid Unicode text", place)
            _require_scalar_text(item, _join(where, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _require_scalar_text(item, f"{where}[{i}]")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _fields(
    raw: object, where: str, required: Iterable[str], optional: Iterable[str] = ()
) -> dict[str, Any]:
    """`raw` as an object with exactly the `required` keys and some of the `optional` ones."""
    name = where or "body"
    if not isinstance(raw, dict):
        _invalid(f"{name} must be a JSON object", name)
    required, optional = set(required), set(optional)
    for key in sorted(raw, key=str):
        if key not in required and key not in optional:
            _invalid(f"unknown field {_join(where, key)}", _join(where, key))
    for key in sorted(required):
        if key not in raw:
            _invalid(f"missing field {_join(where, key)}", _join(where, key))
    return raw


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _string(
    value: object,
    field: str,
    *,
    max_length: int,
    form: re.Pattern[str] | None = None,
    min_length: int = 1,
    multiline: bool = False,
) -> str:
    if not isinstance(value, str):
        _invalid(f"{field} must be a string", field)
    if not min_length <= len(value) <= max_length:
        _invalid(f"{field} must be {min_length}-{max_length} characters", field)
    if form is not None and not matches(form, value):
        _invalid(f"{field} is not in the expected format", field)
    return check_text(value, field, multiline=multiline)


def _integer(value: object, field: str, *, minimum: int, maximum: int) -> int:
    # bool is an int to Python, and 30.0 equals 30; JSON clients mean neither as an integer.
    if isinstance(value, bool) or not isinstance(value, int):
        _invalid(f"{field} must be an integer", field)
    if not minimum <= value <= maximum:
        _invalid(f"{field} must be {minimum}-{maximum}", field)
    return value


def instant(value: object, field: str) -> datetime:
    """An ISO-8601 / RFC 3339 instant with an explicit offset; naive or date-only is a 400."""
    if not isinstance(value, str):
        _invalid(f"{field} must be a string", field)
    match = _INSTANT.fullmatch(value)
    if match is None:
        hint = " (a '+' in a query string must be sent as %2B)" if " " in value else ""
        _invalid(f"{field} must be a date-time like 2030-01-07T09:00:00-05:00{hint}", field)
    if match["offset"] is None:
        _invalid(f"{field} must carry a UTC offset, e.g. -05:00 or Z", field)
    fraction = (match["fraction"] or "")[:7]  # Python keeps microseconds; the rest is noise
    offset = "+00:00" if match["offset"] in ("Z", "z") else match["offset"]
    try:
        parsed = datetime.fromisoformat(f"{match['date']}T{match['time']}{fraction}{offset}")
        in_utc = parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        _invalid(f"{field} is not a valid date-time", field)
    if not _EARLIEST <= in_utc < _LATEST:
        _invalid(f"{field} is out of range", field)
    return parsed


def local_date(value: object, field: str) -> date:
    """A calendar date `YYYY-MM-DD`."""
    if not isinstance(value, str) or not matches(_DATE, value):
        _invalid(f"{field} must be a date YYYY-MM-DD", field)
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        _invalid(f"{field} is not a valid date", field)
    if not _EARLIEST.date() <= parsed < _LATEST.date():
        _invalid(f"{field} is out of range", field)
    return parsed


def doctor_id(value: object, field: str = "doctor_id") -> str:
    """A doctor id: 1-64 letters, digits, '-' or '_'."""
    return _string(value, field, max_length=64, form=_DOCTOR_ID)


def uuid_id(value: object, field: str) -> str:
    """A UUID in its canonical hyphenated form, lowercased (ids are stored lowercase)."""
    if not isinstance(value, str) or not matches(_UUID, value):
        _invalid(f"{field} must be a UUID", field)
    return value.lower()


# Commands ----------------------------------------------------------------------------------


def register_doctor(doctor: str, request: HttpRequest) -> RegisterDoctor:
    """`PUT /doctors/{doctor_id}` → RegisterDoctor."""
    doctor = doctor_id(doctor)
    no_query(request)
    body = _fields(
        json_object(request),
        "",
        required=("name", "country", "working_hours"),
        optional=("time_zone", "slot_minutes"),
    )
    slot_minutes = body.get("slot_minutes", 30)
    if (
        isinstance(slot_minutes, bool)
        or not isinstance(slot_minutes, int)
        or slot_minutes not in ALLOWED_SLOT_MINUTES
    ):
        _invalid(f"slot_minutes must be one of {list(ALLOWED_SLOT_MINUTES)}", "slot_minutes")
    # Present means a zone: null is as wrong here as for any other field.
    time_zone = (
        _string(body["time_zone"], "time_zone", max_length=64) if "time_zone" in body else None
    )
    return RegisterDoctor(
        doctor_id=doctor,
        name=_string(body["name"], "name", max_length=MAX_NAME),
        country=_string(body["country"], "country", max_length=2, form=_COUNTRY),
        working_hours=_working_hours(body["working_hours"]),
        time_zone=time_zone,
        slot_minutes=slot_minutes,
    )


def _working_hours(raw: object) -> dict[str, list[list[str]]]:
    days = _fields(raw, "working_hours", required=(), optional=WEEKDAYS)
    out: dict[str, list[list[str]]] = {}
    for day, ranges in days.items():
        where = f"working_hours.{day}"
        if not isinstance(ranges, list) or len(ranges) > MAX_RANGES_PER_DAY:
            _invalid(f"{where} must be a list of at most {MAX_RANGES_PER_DAY} ranges", where)
        out[day] = []
        for i, pair in enumerate(ranges):
            if (
                not isinstance(pair, list)
                or len(pair) != 2
                or not all(isinstance(t, str) for t in pair)
            ):
                _invalid(f'{where}[{i}] must be a pair ["HH:MM", "HH:MM"]', f"{where}[{i}]")
            out[day].append([pair[0], pair[1]])
    return out


_BOOKING_FIELDS = ("doctor_id", "patient", "start")
_BOOKING_OPTIONAL = ("duration_minutes", "notes")


def book_appointment(request: HttpRequest) -> BookAppointment:
    """`POST /appointments` and `POST /appointment-requests` → BookAppointment."""
    no_query(request)
    body = _fields(json_object(request), "", _BOOKING_FIELDS, _BOOKING_OPTIONAL)
    return BookAppointment(
        doctor_id=doctor_id(body["doctor_id"]),
        patient=_patient(body["patient"]),
        start=instant(body["start"], "start"),
        duration_minutes=_duration(body),
        notes=_optional_text(body, "notes"),
    )


def _patient(raw: object) -> Patient:
    fields = _fields(raw, "patient", required=("name", "phone"), optional=("document_id",))
    for key, value in fields.items():
        if not isinstance(value, str):
            _invalid(f"patient.{key} must be a string", f"patient.{key}")
    # Patient checks the formats (E.164 phone, document id) and never echoes the values.
    return Patient(fields["name"], fields["phone"], fields.get("document_id"))


def _duration(body: Mapping[str, Any]) -> int | None:
    if "duration_minutes" not in body:
        return None
    return _integer(
        body["duration_minutes"],
        "duration_minutes",
        minimum=MIN_DURATION_MINUTES,
        maximum=MAX_DURATION_MINUTES,
    )


def _optional_text(body: Mapping[str, Any], field: str) -> str | None:
    if field not in body:
        return None
    return _string(body[field], field, max_length=MAX_TEXT, min_length=0, multiline=True)


def idempotency_key(request: HttpRequest) -> str | None:
    """The `Idempotency-Key` header, checked by the use case."""
    return request.header("Idempotency-Key")


def if_match(request: HttpRequest) -> int | None:
    """The version in `If-Match`: `3`, `"3"` or `W/"3"`; anything else is a 400."""
    value = request.header("If-Match")
    if value is None:
        return None
    match = _IF_MATCH.fullmatch(value.strip(" \t"))
    if match is None:
        _invalid('If-Match must be an appointment version, e.g. 3 or "3"', "If-Match")
    return int(match["weak"] or match["quoted"] or match["bare"])


def reschedule(appointment_id: str, request: HttpRequest) -> RescheduleAppointment:
    """`PATCH /appointments/{id}` → RescheduleAppointment."""
    appointment_id = uuid_id(appointment_id, "appointment_id")
    no_query(request)
    body = _fields(json_object(request), "", ("start",), ("duration_minutes",))
    return RescheduleAppointment(
        appointment_id=appointment_id,
        start=instant(body["start"], "start"),
        duration_minutes=_duration(body),
        expected_version=if_match(request),
    )


def change_status(appointment_id: str, request: HttpRequest) -> ChangeStatus:
    """`POST /appointments/{id}/status` → ChangeStatus."""
    appointment_id = uuid_id(appointment_id, "appointment_id")
    no_query(request)
    body = _fields(json_object(request), "", ("status",), ("reason",))
    status = body["status"]
    if not isinstance(status, str) or status not in _SETTABLE_STATUSES:
        _invalid(f"status must be one of {', '.join(_SETTABLE_STATUSES)}", "status")
    return ChangeStatus(
        appointment_id=appointment_id,
        status=Status(status),
        reason=_optional_text(body, "reason"),
        expected_version=if_match(request),
    )


def cancel(appointment_id: str, request: HttpRequest) -> CancelAppointment:
    """`DELETE /appointments/{id}` → CancelAppointment (If-Match honoured when sent)."""
    appointment_id = uuid_id(appointment_id, "appointment_id")
    no_query(request)
    return CancelAppointment(
        appointment_id=appointment_id,
        expected_version=if_match(request),
    )


# Query strings -----------------------------------------------------------------------------


def _query(request: HttpRequest, allowed: Iterable[str]) -> dict[str, str]:
    """The query parameters, each at most once and all in `allowed`."""
    allowed = set(allowed)
    out: dict[str, str] = {}
    for name in sorted(request.query):
        if name not in allowed:
            _invalid(f"unknown query parameter {name}", name)
        values = request.query[name]
        if len(values) != 1:
            _invalid(f"query parameter {name} must be given once", name)
        out[name] = values[0]
    return out


def no_query(request: HttpRequest) -> None:
    """Refuse any query parameter (the route takes none)."""
    _query(request, ())


def availability_date(request: HttpRequest) -> date:
    """`GET /doctors/{id}/availability?date=` → the local date."""
    query = _query(request, ("date",))
    if "date" not in query:
        _invalid("missing query parameter date", "date")
    return local_date(query["date"], "date")


_BY_DOCTOR = frozenset({"doctor_id", "date"})
_BY_COUNTRY = frozenset({"country", "status"})
_RANGE = frozenset({"from", "to"})
_PAGING = frozenset({"limit", "next_token"})


def list_query(request: HttpRequest) -> ListDoctorDay | ListByCountryStatus:
    """`GET /appointments?...` → one of the two list commands; other combinations are a 400."""
    query = _query(request, _BY_DOCTOR | _BY_COUNTRY | _RANGE | _PAGING)
    filters = set(query) - _PAGING
    limit = _limit(query.get("limit"))
    token = query.get("next_token")
    if token is not None and not token:
        _invalid("next_token must not be empty", "next_token")
    if filters == _BY_DOCTOR:
        return ListDoctorDay(
            doctor_id=doctor_id(query["doctor_id"]),
            day=local_date(query["date"], "date"),
            limit=limit,
            next_token=token,
        )
    if _BY_COUNTRY <= filters <= _BY_COUNTRY | _RANGE:
        status = query["status"]
        if status not in {str(s) for s in Status}:
            _invalid(f"status must be one of {', '.join(str(s) for s in Status)}", "status")
        return ListByCountryStatus(
            country=_string(query["country"], "country", max_length=2, form=_COUNTRY),
            status=Status(status),
            start_from=instant(query["from"], "from") if "from" in query else None,
            start_to=instant(query["to"], "to") if "to" in query else None,
            limit=limit,
            next_token=token,
        )
    raise ValidationError(
        "filter by doctor_id and date, or by country and status (optionally from and to)",
        field="query",
        given=sorted(filters),
    )


def _limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_PAGE
    if not matches(_LIMIT, value) or not 1 <= int(value) <= MAX_PAGE:
        _invalid(f"limit must be an integer 1-{MAX_PAGE}", "limit")
    return int(value)


# Responses ---------------------------------------------------------------------------------


def dumps(payload: object) -> str:
    """Compact JSON that always encodes as UTF-8 (accents kept as they are when they can be)."""
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str)
    if is_scalar_text(text):
        return text
    # Only text that is not Unicode (a lone surrogate) gets here; no value stored before the
    # input rules existed may ever break a response, so it goes out \u-escaped instead.
    return json.dumps(payload, ensure_ascii=True, separators=(",", ":"), default=str)


def _local(value: datetime, zone: ZoneInfo) -> str:
    return value.astimezone(zone).isoformat(timespec="seconds")


def doctor_json(doctor: Doctor) -> dict[str, Any]:
    """The API shape of a doctor."""
    return {
        "doctor_id": doctor.doctor_id,
        "name": doctor.name,
        "country": doctor.country,
        "time_zone": doctor.time_zone,
        "slot_minutes": doctor.slot_minutes,
        "working_hours": doctor.working_hours.to_dict(),
    }


def availability_json(availability: Availability) -> dict[str, Any]:
    """The API shape of a day's free slots, in the doctor's local time."""
    zone = availability.doctor.zone
    return {
        "doctor_id": availability.doctor.doctor_id,
        "date": availability.day.isoformat(),
        "time_zone": availability.doctor.time_zone,
        "slots": [
            {"start": _local(s.start, zone), "end": _local(s.end, zone)} for s in availability.slots
        ],
    }


def appointment_json(appointment: Appointment) -> dict[str, Any]:
    """The API shape of an appointment, instants in the clinic's local time."""
    zone = appointment.zone
    out: dict[str, Any] = {
        "appointment_id": appointment.appointment_id,
        "doctor_id": appointment.doctor_id,
        "country": appointment.country,
        "patient": appointment.patient.to_dict(),
        "start": _local(appointment.start, zone),
        "end": _local(appointment.end, zone),
        "duration_minutes": appointment.duration_minutes,
        "status": str(appointment.status),
        "version": appointment.version,
        "created_at": _local(appointment.created_at, zone),
        "updated_at": _local(appointment.updated_at, zone),
    }
    if appointment.notes is not None:
        out["notes"] = appointment.notes
    return out


def etag(appointment: Appointment) -> str:
    """The strong ETag of an appointment: its version, quoted."""
    return f'"{appointment.version}"'


def list_json(result: ListResult) -> dict[str, Any]:
    """The API shape of a page of appointments."""
    return {
        "items": [appointment_json(a) for a in result.items],
        "next_token": result.next_token,
    }


def request_accepted_json(request: BookingRequest) -> dict[str, Any]:
    """The `202` body of `POST /appointment-requests`."""
    return {"request_id": request.request_id, "status": "pending"}


def booking_request_json(request: BookingRequest) -> dict[str, Any]:
    """The API shape of a booking request."""
    return request.to_public()


def error_status(error: CitasError) -> int:
    """The HTTP status of a domain or edge error (500 for a code the contract lacks)."""
    return STATUS_OF_CODE.get(error.code, 500)


def error_json(code: str, message: str, details: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The contract's error body."""
    return {"error": {"code": code, "message": message, "details": dict(details or {})}}


INTERNAL_ERROR = error_json("internal_error", "internal error")
