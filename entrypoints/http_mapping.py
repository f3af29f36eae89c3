"""HTTP edge of citas: strict parsing of requests into commands.

Kept apart from the Lambda handler so the handler stays a list of one-line routes, and so any
other HTTP front end can reuse the exact same rules. The request readers live in
`entrypoints.http_request`, the JSON shapes of responses in `entrypoints.http_responses`; both
are re-exported here, so a handler needs this one module.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from domain.appointment import Status
from domain.commands import (
    BookAppointment,
    CancelAppointment,
    ChangeStatus,
    JoinWaitlist,
    ListByCountryStatus,
    ListDoctorDay,
    ListTimeOff,
    ListWaitlist,
    PutTimeOff,
    RegisterDoctor,
    RemoveTimeOff,
    RescheduleAppointment,
)
from domain.countries import COUNTRY_CODE
from domain.errors import ValidationError
from domain.schedule import (
    BOOKING_HORIZON_DAYS,
    BUFFER_MINUTES,
    MAX_DURATION_MINUTES,
    MAX_RANGES_PER_DAY,
    MIN_DURATION_MINUTES,
    MIN_NOTICE_MINUTES,
    WEEKDAYS,
    check_slot_minutes,
)
from domain.text import MAX_NAME, MAX_TEXT, matches, pattern
from domain.time_off import MAX_REASON, TIME_OFF_ID
from entrypoints.http_request import (
    HttpRequest,
    PayloadTooLarge,
    caller_clinic,
    doctor_id,
    instant,
    integer,
    invalid,
    json_object,
    local_date,
    next_token,
    no_body,
    no_query,
    object_fields,
    page_limit,
    patient,
    query_params,
    string,
    time_of_day,
    uuid_id,
)
from entrypoints.http_responses import (
    CONTENT_TYPE,
    INTERNAL_ERROR,
    STATUS_OF_CODE,
    MethodNotAllowed,
    appointment_json,
    availability_json,
    booking_request_json,
    doctor_json,
    dumps,
    error_json,
    error_status,
    etag,
    holidays_json,
    list_json,
    request_accepted_json,
    time_off_json,
    time_off_list_json,
    waitlist_json,
    waitlist_list_json,
)

__all__ = [
    "CONTENT_TYPE",
    "INTERNAL_ERROR",
    "STATUS_OF_CODE",
    "HttpRequest",
    "MethodNotAllowed",
    "PayloadTooLarge",
    "appointment_json",
    "availability_date",
    "availability_json",
    "book_appointment",
    "booking_request_json",
    "caller_clinic",
    "cancel",
    "change_status",
    "doctor_id",
    "doctor_json",
    "dumps",
    "error_json",
    "error_status",
    "etag",
    "holidays_json",
    "holidays_query",
    "idempotency_key",
    "if_match",
    "join_waitlist",
    "list_json",
    "list_query",
    "list_time_off",
    "list_waitlist",
    "no_body",
    "no_query",
    "put_time_off",
    "register_doctor",
    "remove_time_off",
    "request_accepted_json",
    "reschedule",
    "time_off_id",
    "time_off_json",
    "time_off_list_json",
    "uuid_id",
    "waitlist_id",
    "waitlist_json",
    "waitlist_list_json",
]

_IF_MATCH = pattern(r'W/"(?P<weak>[0-9]{1,18})"|"(?P<quoted>[0-9]{1,18})"|(?P<bare>[0-9]{1,18})')
_SETTABLE_STATUSES = tuple(str(s) for s in Status if s is not Status.REQUESTED)


def register_doctor(doctor: str, request: HttpRequest) -> RegisterDoctor:
    """`PUT /doctors/{doctor_id}` → RegisterDoctor."""
    doctor = doctor_id(doctor)
    no_query(request)
    body = object_fields(
        json_object(request),
        "",
        required=("name", "country", "working_hours"),
        optional=("time_zone", "slot_minutes", *_RULE_FIELDS, "works_on_holidays"),
    )
    slot_minutes = check_slot_minutes(body.get("slot_minutes", 30))
    # Present means a zone: null is as wrong here as for any other field.
    time_zone = (
        string(body["time_zone"], "time_zone", max_length=64) if "time_zone" in body else None
    )
    return RegisterDoctor(
        doctor_id=doctor,
        name=string(body["name"], "name", max_length=MAX_NAME),
        country=string(body["country"], "country", max_length=2, form=COUNTRY_CODE),
        working_hours=_working_hours(body["working_hours"]),
        time_zone=time_zone,
        slot_minutes=slot_minutes,
        works_on_holidays=_flag(body, "works_on_holidays"),
        **{
            name: integer(body.get(name, default), name, minimum=low, maximum=high)
            for name, (low, high, default) in _RULE_FIELDS.items()
        },
    )


# The doctor's booking rules: field -> (lowest, highest, default), as the contract gives them.
_RULE_FIELDS = {
    "buffer_minutes": BUFFER_MINUTES,
    "min_notice_minutes": MIN_NOTICE_MINUTES,
    "booking_horizon_days": BOOKING_HORIZON_DAYS,
}


def _flag(body: Mapping[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        invalid(f"{name} must be true or false", name)
    return value


def _working_hours(raw: object) -> dict[str, list[list[str]]]:
    days = object_fields(raw, "working_hours", required=(), optional=WEEKDAYS)
    out: dict[str, list[list[str]]] = {}
    for day, ranges in days.items():
        where = f"working_hours.{day}"
        if not isinstance(ranges, list) or len(ranges) > MAX_RANGES_PER_DAY:
            invalid(f"{where} must be a list of at most {MAX_RANGES_PER_DAY} ranges", where)
        out[day] = []
        for i, pair in enumerate(ranges):
            if (
                not isinstance(pair, list)
                or len(pair) != 2
                or not all(isinstance(t, str) for t in pair)
            ):
                invalid(f'{where}[{i}] must be a pair ["HH:MM", "HH:MM"]', f"{where}[{i}]")
            out[day].append([pair[0], pair[1]])
    return out


_BOOKING_FIELDS = ("doctor_id", "patient", "start")
_BOOKING_OPTIONAL = ("duration_minutes", "notes")


def book_appointment(request: HttpRequest) -> BookAppointment:
    """`POST /appointments` and `POST /appointment-requests` → BookAppointment."""
    no_query(request)
    body = object_fields(json_object(request), "", _BOOKING_FIELDS, _BOOKING_OPTIONAL)
    return BookAppointment(
        doctor_id=doctor_id(body["doctor_id"]),
        patient=patient(body["patient"]),
        start=instant(body["start"], "start"),
        duration_minutes=_duration(body),
        notes=_optional_text(body, "notes"),
    )


def _duration(body: Mapping[str, Any]) -> int | None:
    if "duration_minutes" not in body:
        return None
    return integer(
        body["duration_minutes"],
        "duration_minutes",
        minimum=MIN_DURATION_MINUTES,
        maximum=MAX_DURATION_MINUTES,
    )


def _optional_text(body: Mapping[str, Any], field: str) -> str | None:
    if field not in body:
        return None
    return string(body[field], field, max_length=MAX_TEXT, min_length=0, multiline=True)


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
        invalid('If-Match must be an appointment version, e.g. 3 or "3"', "If-Match")
    return int(match["weak"] or match["quoted"] or match["bare"])


def reschedule(appointment_id: str, request: HttpRequest) -> RescheduleAppointment:
    """`PATCH /appointments/{id}` → RescheduleAppointment."""
    appointment_id = uuid_id(appointment_id, "appointment_id")
    no_query(request)
    body = object_fields(json_object(request), "", ("start",), ("duration_minutes",))
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
    body = object_fields(json_object(request), "", ("status",), ("reason",))
    status = body["status"]
    if not isinstance(status, str) or status not in _SETTABLE_STATUSES:
        invalid(f"status must be one of {', '.join(_SETTABLE_STATUSES)}", "status")
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


def availability_date(request: HttpRequest) -> date:
    """`GET /doctors/{id}/availability?date=` → the local date."""
    query = query_params(request, ("date",))
    if "date" not in query:
        invalid("missing query parameter date", "date")
    return local_date(query["date"], "date")


_BY_DOCTOR = frozenset({"doctor_id", "date"})
_BY_COUNTRY = frozenset({"country", "status"})
_RANGE = frozenset({"from", "to"})
_PAGING = frozenset({"limit", "next_token"})
# With country and status: only the appointments the cadence marked at risk.
_AT_RISK = frozenset({"at_risk"})


def list_query(request: HttpRequest) -> ListDoctorDay | ListByCountryStatus:
    """`GET /appointments?...` → one of the two list commands; other combinations are a 400."""
    query = query_params(request, _BY_DOCTOR | _BY_COUNTRY | _RANGE | _PAGING | _AT_RISK)
    filters = set(query) - _PAGING
    limit, token = page_limit(query), next_token(query)
    if filters == _BY_DOCTOR:
        return ListDoctorDay(
            doctor_id=doctor_id(query["doctor_id"]),
            day=local_date(query["date"], "date"),
            limit=limit,
            next_token=token,
        )
    if _BY_COUNTRY <= filters <= _BY_COUNTRY | _RANGE | _AT_RISK:
        status = query["status"]
        at_risk = query.get("at_risk", "false")
        if at_risk not in ("true", "false"):
            invalid("at_risk must be true or false", "at_risk")
        if status not in {str(s) for s in Status}:
            invalid(f"status must be one of {', '.join(str(s) for s in Status)}", "status")
        return ListByCountryStatus(
            country=string(query["country"], "country", max_length=2, form=COUNTRY_CODE),
            status=Status(status),
            start_from=instant(query["from"], "from") if "from" in query else None,
            start_to=instant(query["to"], "to") if "to" in query else None,
            limit=limit,
            next_token=token,
            at_risk=at_risk == "true",
        )
    raise ValidationError(
        "filter by doctor_id and date, or by country and status (optionally from, to and at_risk)",
        field="query",
        given=sorted(filters),
    )


# Time off and holidays ----------------------------------------------------------------------

_HOLIDAY_YEAR = pattern(r"[0-9]{4}")


def time_off_id(value: object) -> str:
    """A time-off id: 1-64 letters, digits, '-' or '_'."""
    return string(value, "time_off_id", max_length=64, form=TIME_OFF_ID)


def put_time_off(doctor: str, block: str, request: HttpRequest) -> PutTimeOff:
    """`PUT /doctors/{doctor_id}/time-off/{time_off_id}` → PutTimeOff."""
    doctor, block = doctor_id(doctor), time_off_id(block)
    no_query(request)
    body = object_fields(json_object(request), "", ("start", "end"), ("reason",))
    # Present means a reason: null is as wrong here as for any other field.
    reason = string(body["reason"], "reason", max_length=MAX_REASON) if "reason" in body else None
    return PutTimeOff(
        doctor_id=doctor,
        time_off_id=block,
        start=instant(body["start"], "start"),
        end=instant(body["end"], "end"),
        reason=reason,
    )


def remove_time_off(doctor: str, block: str, request: HttpRequest) -> RemoveTimeOff:
    """`DELETE /doctors/{doctor_id}/time-off/{time_off_id}` → RemoveTimeOff."""
    doctor, block = doctor_id(doctor), time_off_id(block)
    no_query(request)
    return RemoveTimeOff(doctor, block)


def list_time_off(doctor: str, request: HttpRequest) -> ListTimeOff:
    """`GET /doctors/{doctor_id}/time-off?from=&to=[&limit=&next_token=]` → ListTimeOff."""
    doctor = doctor_id(doctor)
    query = query_params(request, _RANGE | _PAGING)
    for name in ("from", "to"):
        if name not in query:
            invalid(f"missing query parameter {name}", name)
    return ListTimeOff(
        doctor_id=doctor,
        from_day=local_date(query["from"], "from"),
        to_day=local_date(query["to"], "to"),
        limit=page_limit(query),
        next_token=next_token(query),
    )


def holidays_query(country: str, request: HttpRequest) -> tuple[str, int | None]:
    """`GET /holidays/{country}?year=YYYY` → the country and the year (None: this year)."""
    code = string(country, "country", max_length=2, form=COUNTRY_CODE)
    query = query_params(request, ("year",))
    year = query.get("year")
    if year is None:
        return code, None
    if not matches(_HOLIDAY_YEAR, year):
        invalid("year must be a year YYYY", "year")
    return code, int(year)


# The waitlist --------------------------------------------------------------------------------

_WAITLIST_FIELDS = ("doctor_id", "patient", "from", "to")
_WAITLIST_OPTIONAL = ("earliest", "latest", "duration_minutes")


def join_waitlist(request: HttpRequest) -> JoinWaitlist:
    """`POST /waitlist` → JoinWaitlist (the range and window are checked by the domain)."""
    no_query(request)
    body = object_fields(json_object(request), "", _WAITLIST_FIELDS, _WAITLIST_OPTIONAL)
    # Present means a time: null is as wrong here as for any other field.
    window = {
        name: time_of_day(body[name], name) if name in body else None
        for name in ("earliest", "latest")
    }
    return JoinWaitlist(
        doctor_id=doctor_id(body["doctor_id"]),
        patient=patient(body["patient"]),
        from_day=local_date(body["from"], "from"),
        to_day=local_date(body["to"], "to"),
        earliest=window["earliest"],
        latest=window["latest"],
        duration_minutes=_duration(body),
    )


def list_waitlist(request: HttpRequest) -> ListWaitlist:
    """`GET /waitlist?doctor_id=D[&limit=&next_token=]` → ListWaitlist."""
    query = query_params(request, {"doctor_id"} | _PAGING)
    if "doctor_id" not in query:
        invalid("missing query parameter doctor_id", "doctor_id")
    return ListWaitlist(
        doctor_id=doctor_id(query["doctor_id"]),
        limit=page_limit(query),
        next_token=next_token(query),
    )


def waitlist_id(value: object) -> str:
    """A waitlist entry id: a UUID, lowercased."""
    return uuid_id(value, "waitlist_id")
