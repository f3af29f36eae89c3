"""HTTP requests as citas reads them: the proxy event, the body, and strict field readers.

Everything here follows `api/openapi.yaml`: unknown or missing fields, wrong types (a boolean
is not an integer, a float is not an integer), naive or date-only instants and malformed ids are
`400 validation_error`, naming the field in `details.field`. The limits themselves (lengths,
ranges, patterns) are the domain's, imported, never restated.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time
from typing import Any, NoReturn

from attrs import frozen

from domain.clinics import ClinicProfile
from domain.errors import CitasError, ValidationError
from domain.pagination import DEFAULT_PAGE, MAX_PAGE
from domain.patient import Patient
from domain.schedule import DOCTOR_ID, EARLIEST_INSTANT, LATEST_INSTANT
from domain.text import bad_character, check_text, is_scalar_text, matches, pattern
from domain.waitlist import parse_hhmm
from ports.clinics import ClinicDirectory

MAX_BODY_BYTES = 16 * 1024

# Every pattern is ASCII (`[0-9]`, never `\d`) and applied with `matches` (fullmatch): see
# domain.text for the two defects that rule closes.
_UUID = pattern(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_DATE = pattern(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_HHMM = pattern(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]")
_LIMIT = pattern(r"[0-9]{1,3}")
_INSTANT = pattern(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[Tt](?P<time>[0-9]{2}:[0-9]{2}(?::[0-9]{2})?)"
    r"(?P<fraction>\.[0-9]+)?(?P<offset>[Zz]|[+-][0-9]{2}:[0-9]{2})?"
)


class PayloadTooLarge(CitasError):
    """The request body is over the API's limit."""

    code = "payload_too_large"


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
            invalid("the path holds a character that is not allowed", "path")
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
            invalid(f"header {name} must be sent once", name)
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
            invalid("a header or query parameter is not valid Unicode text", "query")
    return {k: tuple(v) for k, v in out.items()}


def _body(body: object, is_base64: bool) -> bytes | None:
    if body is None:
        return None
    if not isinstance(body, str):
        invalid("body must be text", "body")
    if is_base64:
        # Four base64 characters carry three bytes: refuse the obviously large before decoding.
        if len(body) > (MAX_BODY_BYTES + 2) // 3 * 4 + 4:
            _too_large()
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            invalid("body is not valid base64", "body")
    else:
        if len(body) > MAX_BODY_BYTES:  # each character is at least one byte
            _too_large()
        try:
            raw = body.encode("utf-8")
        except UnicodeEncodeError:
            invalid("body is not valid UTF-8", "body")
    if len(raw) > MAX_BODY_BYTES:
        _too_large()
    return raw


def _too_large() -> NoReturn:
    raise PayloadTooLarge(
        f"the request body is over {MAX_BODY_BYTES} bytes", limit_bytes=MAX_BODY_BYTES
    )


def invalid(message: str, field: str) -> NoReturn:
    """Raise the contract's 400 for `field`."""
    raise ValidationError(message, field=field)


def json_object(request: HttpRequest) -> dict[str, Any]:
    """The body as a JSON object; empty, malformed or non-object bodies are a 400."""
    if not request.body:
        invalid("a JSON object body is required", "body")
    try:
        text = request.body.decode("utf-8")
        parsed = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        invalid("the body is not valid JSON", "body")
    if not isinstance(parsed, dict):
        invalid("the body must be a JSON object", "body")
    _require_scalar_text(parsed, "")
    return parsed


def _require_scalar_text(value: object, where: str) -> None:
    r"""Refuse a body holding a lone surrogate (`"\ud800"`) in any key or string, at any depth.

    JSON can spell one, Python keeps it, and no UTF-8 encoder writes it back: stored, it would
    break every response containing it. So it never gets past the parser.
    """
    if isinstance(value, str):
        if not is_scalar_text(value):
            invalid(f"{where or 'body'} is not valid Unicode text", where or "body")
    elif isinstance(value, dict):
        for key, item in value.items():
            # The key's own place: a bad key is never echoed as the field name.
            if not is_scalar_text(key):
                place = where or "body"
                invalid(f"a key in {place} is not valid Unicode text", place)
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


def object_fields(
    raw: object, where: str, required: Iterable[str], optional: Iterable[str] = ()
) -> dict[str, Any]:
    """`raw` as an object with exactly the `required` keys and some of the `optional` ones."""
    name = where or "body"
    if not isinstance(raw, dict):
        invalid(f"{name} must be a JSON object", name)
    required, optional = set(required), set(optional)
    for key in sorted(raw, key=str):
        if key not in required and key not in optional:
            invalid(f"unknown field {_join(where, key)}", _join(where, key))
    for key in sorted(required):
        if key not in raw:
            invalid(f"missing field {_join(where, key)}", _join(where, key))
    return raw


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def string(
    value: object,
    field: str,
    *,
    max_length: int,
    form: re.Pattern[str] | None = None,
    min_length: int = 1,
    multiline: bool = False,
) -> str:
    """`value` as a string of `min_length`-`max_length` characters, of `form` if given."""
    if not isinstance(value, str):
        invalid(f"{field} must be a string", field)
    if not min_length <= len(value) <= max_length:
        invalid(f"{field} must be {min_length}-{max_length} characters", field)
    if form is not None and not matches(form, value):
        invalid(f"{field} is not in the expected format", field)
    return check_text(value, field, multiline=multiline)


def integer(value: object, field: str, *, minimum: int, maximum: int) -> int:
    """`value` as an integer in [minimum, maximum]; a boolean or a float is not one."""
    # bool is an int to Python, and 30.0 equals 30; JSON clients mean neither as an integer.
    if isinstance(value, bool) or not isinstance(value, int):
        invalid(f"{field} must be an integer", field)
    if not minimum <= value <= maximum:
        invalid(f"{field} must be {minimum}-{maximum}", field)
    return value


def instant(value: object, field: str) -> datetime:
    """An ISO-8601 / RFC 3339 instant with an explicit offset; naive or date-only is a 400."""
    if not isinstance(value, str):
        invalid(f"{field} must be a string", field)
    match = _INSTANT.fullmatch(value)
    if match is None:
        hint = " (a '+' in a query string must be sent as %2B)" if " " in value else ""
        invalid(f"{field} must be a date-time like 2030-01-07T09:00:00-05:00{hint}", field)
    if match["offset"] is None:
        invalid(f"{field} must carry a UTC offset, e.g. -05:00 or Z", field)
    fraction = (match["fraction"] or "")[:7]  # Python keeps microseconds; the rest is noise
    offset = "+00:00" if match["offset"] in ("Z", "z") else match["offset"]
    try:
        parsed = datetime.fromisoformat(f"{match['date']}T{match['time']}{fraction}{offset}")
        in_utc = parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        invalid(f"{field} is not a valid date-time", field)
    if not EARLIEST_INSTANT <= in_utc < LATEST_INSTANT:
        invalid(f"{field} is out of range", field)
    return parsed


def local_date(value: object, field: str) -> date:
    """A calendar date `YYYY-MM-DD`."""
    if not isinstance(value, str) or not matches(_DATE, value):
        invalid(f"{field} must be a date YYYY-MM-DD", field)
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        invalid(f"{field} is not a valid date", field)
    if not EARLIEST_INSTANT.date() <= parsed < LATEST_INSTANT.date():
        invalid(f"{field} is out of range", field)
    return parsed


def time_of_day(value: object, field: str) -> time:
    """A local wall time `HH:MM` of the day (`00:00`-`23:59`)."""
    # ASCII digits only: the domain's reader (strptime) would also take other scripts' digits.
    if not isinstance(value, str) or not matches(_HHMM, value):
        invalid(f"{field} must be a local time HH:MM", field)
    return parse_hhmm(value, field)


def patient(raw: object) -> Patient:
    """The `patient` object: `name`, `phone`, optional `document_id`, all strings."""
    fields = object_fields(raw, "patient", required=("name", "phone"), optional=("document_id",))
    for key, value in fields.items():
        if not isinstance(value, str):
            invalid(f"patient.{key} must be a string", f"patient.{key}")
    # Patient checks the formats (E.164 phone, document id) and never echoes the values.
    return Patient(fields["name"], fields["phone"], fields.get("document_id"))


def doctor_id(value: object, field: str = "doctor_id") -> str:
    """A doctor id: 1-64 letters, digits, '-' or '_'."""
    return string(value, field, max_length=64, form=DOCTOR_ID)


def uuid_id(value: object, field: str) -> str:
    """A UUID in its canonical hyphenated form, lowercased (ids are stored lowercase)."""
    if not isinstance(value, str) or not matches(_UUID, value):
        invalid(f"{field} must be a UUID", field)
    return value.lower()


def query_params(request: HttpRequest, allowed: Iterable[str]) -> dict[str, str]:
    """The query parameters, each at most once and all in `allowed`."""
    allowed = set(allowed)
    out: dict[str, str] = {}
    for name in sorted(request.query):
        if name not in allowed:
            invalid(f"unknown query parameter {name}", name)
        values = request.query[name]
        if len(values) != 1:
            invalid(f"query parameter {name} must be given once", name)
        out[name] = values[0]
    return out


def no_query(request: HttpRequest) -> None:
    """Refuse any query parameter (the route takes none)."""
    query_params(request, ())


def no_body(request: HttpRequest) -> None:
    """Refuse a body other than none or `{}` (the route reads none)."""
    if request.body:
        object_fields(json_object(request), "", ())


def page_limit(query: Mapping[str, str]) -> int:
    """The `limit` query parameter of a list: 1-100, default 50."""
    value = query.get("limit")
    if value is None:
        return DEFAULT_PAGE
    if not matches(_LIMIT, value) or not 1 <= int(value) <= MAX_PAGE:
        invalid(f"limit must be an integer 1-{MAX_PAGE}", "limit")
    return int(value)


def next_token(query: Mapping[str, str]) -> str | None:
    """The `next_token` query parameter of a list, if given (never empty)."""
    token = query.get("next_token")
    if token is not None and not token:
        invalid("next_token must not be empty", "next_token")
    return token


def caller_clinic(event: Mapping[str, Any], clinics: ClinicDirectory) -> ClinicProfile | None:
    """The clinic of the API key API Gateway validated for `event`, or None.

    Only `requestContext.identity.apiKeyId` counts: the gateway sets it, and nothing a client
    sends (a header, the body, the path) can choose another clinic.
    """
    context = event.get("requestContext")
    identity = context.get("identity") if isinstance(context, Mapping) else None
    key_id = identity.get("apiKeyId") if isinstance(identity, Mapping) else None
    return clinics.by_api_key_id(key_id) if isinstance(key_id, str) and key_id else None
