"""Settings from the environment: the one module of citas that reads environment variables.

| variable | default | meaning |
| --- | --- | --- |
| `CITAS_BACKEND` | `memory` | `memory` (embedded, in-process) or `aws` (DynamoDB, SQS) |
| `CITAS_COUNTRIES` | `PE=America/Lima,CL=America/Santiago` | served countries, `CODE=zone` |
| `CITAS_TABLE_NAME` | `citas-local` | the DynamoDB table (aws backend) |
| `CITAS_EVENTS_QUEUE_URL` | none | the SQS FIFO queue events are published to (aws) |
| `CITAS_BOOKING_QUEUE_URLS` | none | booking-request FIFO queues, `PE=url,CL=url` (aws) |
| `CITAS_CLINICS` | one clinic `demo` | the local server's clinics and their keys, `id=key,...` |
| `CITAS_API_KEY` | `local-dev-key` | the `x-api-key` of the default `demo` clinic (local server) |
| `CITAS_CLINICS_PARAMETER_PATH` | none | AWS: the SSM path of the clinics Terraform writes |
| `CITAS_NOTIFIER` | `console` | patient messages: `memory`, `console`, `sns` or `aws` (below) |
| `CITAS_CHANNELS` | `sms` | the local clinics' channels, usual one first: `whatsapp,sms` |
| `CITAS_PUBLIC_BASE_URL` | the server's URL | where links point, unless the clinic has its own |
| `CITAS_LINK_SECRET` | random per process | signs links locally: a secret, or `id:secret,...` |
| `CITAS_LINK_KEYS_PARAMETER` | none | AWS: the SSM SecureString holding the link keys (JSON) |
| `CITAS_LINK_KEYS_SECRET` | none | AWS: or the Secrets Manager secret holding them |
| `CITAS_SMS_ORIGINATION` | none | AWS: the default SMS origination identity (number id, ARN) |
| `CITAS_WHATSAPP_PHONE_NUMBER_ID` | none | AWS: the default WhatsApp phone number id |
| `CITAS_WORKER_COUNTRY` | none | the one country a booking worker function serves |
| `CITAS_PAGE_TOKEN_KEY` | random per process | signs the lists' `next_token` (≥ 16 bytes) |
| `CITAS_HOLD_MINUTES` | `30` | minutes a waitlist offer holds its slot, 1-1440 (below) |
| `CITAS_SWEEP_SECONDS` | `15` | local server: seconds between sweeps of expired offers |

`CITAS_NOTIFIER=aws` sends SMS through AWS End User Messaging SMS and WhatsApp through AWS End
User Messaging Social; `sns` sends SMS only, through SNS. With `CITAS_LINK_SECRET` the first key
of the list signs and every one listed is accepted (a rotation).

Every process of a deployment must share `CITAS_PAGE_TOKEN_KEY` (Terraform sets it): a token
one process issued is then good on every other.

`CITAS_CLINICS` is comma-separated `clinic_id=api_key` pairs; each clinic's display name is
`Clínica <Id>` (`citas serve --clinic id:key:Name` names one). With `CITAS_CLINICS_PARAMETER_PATH`
set (a deployed function), the clinics and the API key ids that stand for them come from SSM
Parameter Store instead, and `CITAS_CLINICS` / `CITAS_API_KEY` are not read.

`CITAS_HOLD_MINUTES` is the deployment's default: a clinic whose directory entry names its own
`hold_minutes` (Terraform's `clinics`) holds its offers that long instead. On AWS the offers
sweeper runs every minute (EventBridge); `CITAS_SWEEP_SECONDS` paces the local server's thread.

`CITAS_COUNTRIES` is comma-separated ISO 3166 alpha-2 codes, each with the IANA zone that is
the default time zone of its doctors.

An empty value counts as unset. A malformed value raises `ValueError` at start-up, naming the
variable, so a misconfigured function fails at once instead of on some later request.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from typing import Literal

import attrs

from adapters.links import parse_link_secret
from domain.clinics import (
    CLINIC_ID,
    DEMO_CLINIC_ID,
    DEMO_CLINIC_NAME,
    MAX_HOLD_MINUTES,
    ClinicProfile,
)
from domain.countries import DEFAULT_TIME_ZONES, CountryCatalog
from domain.errors import CitasError
from domain.pagination import MIN_KEY_BYTES
from domain.text import matches, pattern
from domain.waitlist import DEFAULT_HOLD_MINUTES

Backend = Literal["memory", "aws"]
BACKENDS: tuple[Backend, ...] = ("memory", "aws")
NotifierKind = Literal["memory", "console", "sns", "aws"]
NOTIFIERS: tuple[NotifierKind, ...] = ("memory", "console", "sns", "aws")
DEFAULT_COUNTRIES = ",".join(f"{code}={zone}" for code, zone in DEFAULT_TIME_ZONES.items())
DEFAULT_TABLE_NAME = "citas-local"
DEFAULT_API_KEY = "local-dev-key"
# How often `citas serve` lets expired waitlist offers go (EventBridge: every minute on AWS).
DEFAULT_SWEEP_SECONDS = 15.0
MIN_SWEEP_SECONDS = 0.1
MAX_SWEEP_SECONDS = 3600.0
# DynamoDB's own rule for table names.
_TABLE_NAME = pattern(r"[A-Za-z0-9_.-]{3,255}")
_URL = pattern(r"https?://[!-~]+")
# An API key as the local server takes it: what API Gateway keys look like, and none of the
# separators of `CITAS_CLINICS` (`,` `=`) or `--clinic` (`:`).
_API_KEY = pattern(r"[A-Za-z0-9._~+/-]{1,128}")
# A path of SSM Parameter Store: `/` then segments of its allowed characters.
_PARAMETER_PATH = pattern(r"(/[A-Za-z0-9_.-]+)+")


@attrs.frozen
class LocalClinic:
    """A clinic the local server serves, and the `x-api-key` that stands for it."""

    profile: ClinicProfile
    # Secret: kept out of repr, so a logged Settings never shows it.
    api_key: str = attrs.field(repr=False)

    @property
    def api_key_id(self) -> str:
        """The id API Gateway would give the key: what the handler maps to the clinic."""
        return f"local-{self.profile.clinic_id}"


def default_clinic_name(clinic_id: str) -> str:
    """`Clínica San Borja` for `san-borja`: the name of a clinic configured without one."""
    return f"Clínica {clinic_id.replace('-', ' ').title()}"


def local_clinic(clinic_id: str, api_key: str, name: str | None, source: str) -> LocalClinic:
    """One configured clinic; ValueError naming `source` when the id, key or name is bad."""
    if not matches(CLINIC_ID, clinic_id):
        raise ValueError(
            f"{source}: clinic id {clinic_id!r} must be 2-40 lower-case letters, digits or '-'"
        )
    if not matches(_API_KEY, api_key):
        # The key is a secret: never quoted in the message.
        raise ValueError(
            f"{source}: the key of clinic {clinic_id!r} must be 1-128 letters, digits or '._~+/-'"
        )
    try:
        profile = ClinicProfile(
            clinic_id, name if name is not None else default_clinic_name(clinic_id)
        )
    except CitasError as e:
        raise ValueError(f"{source}: clinic {clinic_id!r}: {e.message}") from e
    return LocalClinic(profile, api_key)


def parse_clinic_option(value: str) -> LocalClinic:
    """`id:key[:Display name]`, the value of `citas serve --clinic`."""
    clinic_id, sep, rest = value.partition(":")
    if not sep:
        # Not quoted: a value without ':' may well be the key alone.
        raise ValueError("--clinic is id:key[:Display name]; a value was given without a key")
    api_key, sep, name = rest.partition(":")
    return local_clinic(
        clinic_id.strip(), api_key.strip(), name.strip() if sep else None, "--clinic"
    )


def check_clinics(clinics: tuple[LocalClinic, ...], source: str) -> tuple[LocalClinic, ...]:
    """`clinics` if no two share an id or a key; ValueError otherwise."""
    if not clinics:
        raise ValueError(f"{source}: at least one clinic is needed")
    ids: set[str] = set()
    keys: set[str] = set()
    for clinic in clinics:
        clinic_id = clinic.profile.clinic_id
        if clinic_id in ids:
            raise ValueError(f"{source}: clinic {clinic_id!r} is named twice")
        if clinic.api_key in keys:
            # A key must choose one clinic; the key itself is not quoted.
            raise ValueError(f"{source}: clinic {clinic_id!r} shares its key with another")
        ids.add(clinic_id)
        keys.add(clinic.api_key)
    return clinics


@attrs.frozen
class Settings:
    """What a citas process is configured with."""

    backend: Backend = "memory"
    countries: CountryCatalog = attrs.field(factory=CountryCatalog)
    table_name: str = DEFAULT_TABLE_NAME
    events_queue_url: str | None = None
    booking_queue_urls: Mapping[str, str] = attrs.field(factory=dict)
    clinics: tuple[LocalClinic, ...] = attrs.field(
        factory=lambda: (
            LocalClinic(ClinicProfile(DEMO_CLINIC_ID, DEMO_CLINIC_NAME), DEFAULT_API_KEY),
        )
    )
    clinics_parameter_path: str | None = None
    notifier: NotifierKind = "console"
    worker_country: str | None = None
    # Secret: kept out of repr, so a logged Settings never shows it.
    page_token_key: bytes | None = attrs.field(default=None, repr=False)
    public_base_url: str | None = None
    link_secret: str | None = attrs.field(default=None, repr=False)
    link_keys_parameter: str | None = None
    link_keys_secret: str | None = None
    sms_origination: str | None = None
    whatsapp_phone_number_id: str | None = None
    # A waitlist offer's hold for the clinics whose profile names none.
    hold_minutes: int = DEFAULT_HOLD_MINUTES
    sweep_seconds: float = DEFAULT_SWEEP_SECONDS

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Read the settings from `environ`; raise ValueError naming a malformed variable."""
        countries = _countries(_get(environ, "CITAS_COUNTRIES") or DEFAULT_COUNTRIES)
        path = _parameter_path(_get(environ, "CITAS_CLINICS_PARAMETER_PATH"))
        return cls(
            backend=_backend(_get(environ, "CITAS_BACKEND") or "memory"),
            countries=countries,
            table_name=_table_name(_get(environ, "CITAS_TABLE_NAME") or DEFAULT_TABLE_NAME),
            events_queue_url=_optional_url(environ, "CITAS_EVENTS_QUEUE_URL"),
            booking_queue_urls=_queue_urls(_get(environ, "CITAS_BOOKING_QUEUE_URLS"), countries),
            # A deployed function reads its clinics from SSM: the local ones are not read.
            clinics=_clinics(environ) if path is None else (),
            clinics_parameter_path=path,
            notifier=_notifier(_get(environ, "CITAS_NOTIFIER") or "console"),
            worker_country=_worker_country(_get(environ, "CITAS_WORKER_COUNTRY"), countries),
            page_token_key=_page_token_key(_get(environ, "CITAS_PAGE_TOKEN_KEY")),
            public_base_url=_optional_url(environ, "CITAS_PUBLIC_BASE_URL"),
            link_secret=_link_secret(_get(environ, "CITAS_LINK_SECRET")),
            link_keys_parameter=_get(environ, "CITAS_LINK_KEYS_PARAMETER"),
            link_keys_secret=_get(environ, "CITAS_LINK_KEYS_SECRET"),
            sms_origination=_get(environ, "CITAS_SMS_ORIGINATION"),
            whatsapp_phone_number_id=_get(environ, "CITAS_WHATSAPP_PHONE_NUMBER_ID"),
            hold_minutes=_hold_minutes(_get(environ, "CITAS_HOLD_MINUTES")),
            sweep_seconds=_sweep_seconds(_get(environ, "CITAS_SWEEP_SECONDS")),
        )


def _get(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name, "").strip()
    return value or None


def _link_secret(value: str | None) -> str | None:
    if value is not None:
        parse_link_secret(value)  # a malformed one fails at start-up, unquoted
    return value


def _channels(environ: Mapping[str, str]) -> tuple[str, ...]:
    value = _get(environ, "CITAS_CHANNELS")
    channels = tuple(c.strip() for c in value.split(",")) if value else ("sms",)
    try:
        ClinicProfile(DEMO_CLINIC_ID, DEMO_CLINIC_NAME, channels=channels)
    except CitasError as e:
        raise ValueError(f"CITAS_CHANNELS: {e.message}") from None
    return channels


def with_channels(
    clinics: tuple[LocalClinic, ...], channels: tuple[str, ...]
) -> tuple[LocalClinic, ...]:
    """The local clinics, each writing to patients on `channels`."""
    return tuple(
        attrs.evolve(c, profile=attrs.evolve(c.profile, channels=channels)) for c in clinics
    )


def _clinics(environ: Mapping[str, str]) -> tuple[LocalClinic, ...]:
    return with_channels(_listed_clinics(environ), _channels(environ))


def _listed_clinics(environ: Mapping[str, str]) -> tuple[LocalClinic, ...]:
    value = _get(environ, "CITAS_CLINICS")
    if value is None:
        key = _get(environ, "CITAS_API_KEY") or DEFAULT_API_KEY
        return (local_clinic(DEMO_CLINIC_ID, key, DEMO_CLINIC_NAME, "CITAS_API_KEY"),)
    clinics = []
    for number, part in enumerate(value.split(","), start=1):
        clinic_id, sep, key = (p.strip() for p in part.partition("="))
        if not sep or not clinic_id or not key:
            # Named by position, not quoted: the part may be a key.
            raise ValueError(
                f"CITAS_CLINICS is a comma-separated list of id=key; part {number} is not"
            )
        clinics.append(local_clinic(clinic_id, key, None, "CITAS_CLINICS"))
    return check_clinics(tuple(clinics), "CITAS_CLINICS")


def _parameter_path(value: str | None) -> str | None:
    if value is None:
        return None
    path = value.rstrip("/")
    if not matches(_PARAMETER_PATH, path):
        raise ValueError(
            f"CITAS_CLINICS_PARAMETER_PATH must be an SSM path like /citas/clinics, got {value!r}"
        )
    return path


def _backend(value: str) -> Backend:
    for backend in BACKENDS:
        if value.lower() == backend:
            return backend
    raise ValueError(f"CITAS_BACKEND must be one of {', '.join(BACKENDS)}, got {value!r}")


def _notifier(value: str) -> NotifierKind:
    for notifier in NOTIFIERS:
        if value.lower() == notifier:
            return notifier
    raise ValueError(f"CITAS_NOTIFIER must be one of {', '.join(NOTIFIERS)}, got {value!r}")


def _worker_country(value: str | None, countries: CountryCatalog) -> str | None:
    if value is None:
        return None
    code = value.upper()
    if code not in countries:
        # A worker bound to a country nobody serves would dead-letter every request.
        raise ValueError(f"CITAS_WORKER_COUNTRY names {value!r}, which is not in CITAS_COUNTRIES")
    return code


def _pairs(value: str, name: str) -> dict[str, str]:
    """Parse `K=V,K=V`, rejecting empty parts and repeated keys."""
    out: dict[str, str] = {}
    for part in value.split(","):
        key, sep, item = (p.strip() for p in part.partition("="))
        if not sep or not key or not item:
            raise ValueError(f"{name} is a comma-separated list of CODE=value, got {part!r}")
        if key in out:
            raise ValueError(f"{name} names {key!r} twice")
        out[key] = item
    return out


def _countries(value: str) -> CountryCatalog:
    try:
        return CountryCatalog.from_mapping(_pairs(value, "CITAS_COUNTRIES"))
    except CitasError as e:  # an unknown time zone
        raise ValueError(f"CITAS_COUNTRIES: {e.message}") from e
    except ValueError as e:
        raise ValueError(f"CITAS_COUNTRIES: {e}") from e


def _table_name(value: str) -> str:
    if not matches(_TABLE_NAME, value):
        raise ValueError(
            f"CITAS_TABLE_NAME must be 3-255 letters, digits, '_', '-' or '.', got {value!r}"
        )
    return value


def _url(value: str, name: str) -> str:
    if not matches(_URL, value):
        raise ValueError(f"{name} must be an http(s) URL, got {value!r}")
    return value


def _page_token_key(value: str | None) -> bytes | None:
    if value is None:
        return None
    key = value.encode("utf-8")
    if len(key) < MIN_KEY_BYTES:
        # The value itself is a secret: never quoted in the message.
        raise ValueError(f"CITAS_PAGE_TOKEN_KEY must be at least {MIN_KEY_BYTES} bytes")
    return key


def _hold_minutes(value: str | None) -> int:
    if value is None:
        return DEFAULT_HOLD_MINUTES
    # Whole minutes only: "30.5" or "30m" is a typo, not a hold.
    minutes = int(value) if value.isascii() and value.isdigit() else 0
    if not 1 <= minutes <= MAX_HOLD_MINUTES:
        raise ValueError(
            f"CITAS_HOLD_MINUTES must be a whole number of minutes, 1-{MAX_HOLD_MINUTES}, "
            f"got {value!r}"
        )
    return minutes


def _sweep_seconds(value: str | None) -> float:
    if value is None:
        return DEFAULT_SWEEP_SECONDS
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    # `not a <= x <= b` also refuses nan.
    if not MIN_SWEEP_SECONDS <= seconds <= MAX_SWEEP_SECONDS:
        raise ValueError(
            f"CITAS_SWEEP_SECONDS must be a number of seconds, {MIN_SWEEP_SECONDS:g}-"
            f"{MAX_SWEEP_SECONDS:g}, got {value!r}"
        )
    return seconds


def _optional_url(environ: Mapping[str, str], name: str) -> str | None:
    value = _get(environ, name)
    return _url(value, name) if value is not None else None


def _queue_urls(value: str | None, countries: CountryCatalog) -> dict[str, str]:
    name = "CITAS_BOOKING_QUEUE_URLS"
    if value is None:
        return {}
    urls = _pairs(value, name)
    for code, url in urls.items():
        if code not in countries:
            raise ValueError(f"{name} names {code!r}, which is not in CITAS_COUNTRIES")
        _url(url, name)
    return urls


def bridge_aws_region(environ: MutableMapping[str, str] = os.environ) -> None:
    """Let boto3 see `AWS_REGION`, the variable the contract names, when it is the one set."""
    # botocore reads the region from AWS_DEFAULT_REGION only; Lambda sets both, while a local
    # shell that follows the contract (and the other AWS SDKs) sets AWS_REGION alone.
    region = environ.get("AWS_REGION", "").strip()
    if region and not environ.get("AWS_DEFAULT_REGION", "").strip():
        environ["AWS_DEFAULT_REGION"] = region
