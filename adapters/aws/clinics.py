"""The clinic directory on AWS: one Parameter Store parameter per clinic, written by Terraform.

infra/terraform (`aws_ssm_parameter.clinic`) writes, for each clinic, the String parameter
`<path>/<clinic_id>` whose value is the JSON object

    {"clinic_id": "...", "name": "...", "api_key_id": "...", "public_base_url": "..." | null,
     "channels": ["sms", "whatsapp"]?, "sms_number": "+51..."?, "whatsapp_phone_number_id": "..."?,
     "hold_minutes": 30?}

where `api_key_id` is the id (not the value) of the clinic's API Gateway key: the
`requestContext.identity.apiKeyId` of every request sent with that key, and `hold_minutes`
how long the clinic's waitlist offers hold their slot (null or absent: the deployment's
`CITAS_HOLD_MINUTES`). The directory reads every parameter right under `path` in one
paginated GetParametersByPath, keeps them, and reads them again when a lookup misses, or
`all()` finds them older than `refresh_seconds`, at most once per `refresh_seconds`: a clinic
added by `terraform apply` works on warm containers within that interval (the reminder sweep
included), and a stream of unknown keys costs one read per interval, not one per request.

A parameter that cannot be read as a clinic (bad JSON, a bad id or name; two naming one key)
is left out and logged by name, never its value: one bad entry must not take every other clinic
of the deployment down with it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

import attrs
import boto3

from adapters.aws.client import CLIENT_CONFIG, LazyClient, lazy, translate_errors
from domain.clinics import ClinicProfile
from domain.errors import ValidationError

if TYPE_CHECKING:
    from mypy_boto3_ssm.client import SSMClient

SERVICE: Final = "ssm"
DEFAULT_REFRESH_SECONDS: Final = 60.0
log = logging.getLogger(__name__)


def default_client() -> SSMClient:
    """An SSM client from the standard AWS environment (`AWS_ENDPOINT_URL_SSM`, ...)."""
    return boto3.client("ssm", config=CLIENT_CONFIG)


@attrs.frozen
class _Snapshot:
    """The clinics of one read of the directory, by id and by API key id."""

    by_id: Mapping[str, ClinicProfile]
    by_api_key_id: Mapping[str, ClinicProfile]


class SSMClinicDirectory:
    """`ports.clinics.ClinicDirectory` read from the Parameter Store path Terraform writes."""

    def __init__(
        self,
        path: str,
        client: SSMClient | LazyClient[SSMClient] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        refresh_seconds: float = DEFAULT_REFRESH_SECONDS,
    ) -> None:
        # The IAM grant is on the path's own ARN (GetParametersByPath is authorised against
        # the path as sent), so a trailing '/' would be a different, ungranted resource.
        if not path.startswith("/") or path.rstrip("/") == "":
            raise ValueError(f"the clinics parameter path must start with '/', got {path!r}")
        if refresh_seconds < 0:
            raise ValueError(f"refresh_seconds must be 0 or more, got {refresh_seconds!r}")
        self.path = path.rstrip("/")
        self.refresh_seconds = refresh_seconds
        self._client = lazy(client, default_client)
        self._clock = clock
        self._lock = threading.Lock()
        self._snapshot: _Snapshot | None = None
        self._read_at: float | None = None

    def get(self, clinic_id: str) -> ClinicProfile | None:
        """The clinic, or None if this deployment does not serve it."""
        return self._lookup(lambda snapshot: snapshot.by_id.get(clinic_id))

    def by_api_key_id(self, api_key_id: str) -> ClinicProfile | None:
        """The clinic whose API key (as the gateway identifies it) this is, or None."""
        return self._lookup(lambda snapshot: snapshot.by_api_key_id.get(api_key_id))

    def all(self) -> Sequence[ClinicProfile]:
        """Every clinic, in id order, read again first when the last read is an interval old."""
        snapshot = self._current()
        # No miss ever tells a sweep over every clinic that one was added: age does.
        snapshot = self._reread_if_due(snapshot) or snapshot
        return tuple(snapshot.by_id[clinic_id] for clinic_id in sorted(snapshot.by_id))

    # --- reading -------------------------------------------------------------------------

    def _lookup(self, find: Callable[[_Snapshot], ClinicProfile | None]) -> ClinicProfile | None:
        snapshot = self._current()
        found = find(snapshot)
        if found is None:
            fresher = self._reread_if_due(snapshot)
            if fresher is not None:
                found = find(fresher)
        return found

    def _current(self) -> _Snapshot:
        """The directory as last read; read now if it never was."""
        snapshot = self._snapshot
        if snapshot is not None:
            return snapshot
        with self._lock:
            if self._snapshot is None:
                # No interval applies here: without a first read there is nothing to answer.
                self._read_at = self._clock()
                self._snapshot = self._read()
            return self._snapshot

    def _reread_if_due(self, seen: _Snapshot) -> _Snapshot | None:
        """A new read after a miss, unless the last read (or try) is under an interval old."""
        with self._lock:
            if self._snapshot is not seen:
                # Another thread read the directory since `seen`: look there first.
                return self._snapshot
            now = self._clock()
            if self._read_at is not None and now - self._read_at < self.refresh_seconds:
                return None
            # Counted before the call: a read that fails (SSM throttled) is not tried again
            # by every following miss of the interval.
            self._read_at = now
            self._snapshot = self._read()
            return self._snapshot

    def _read(self) -> _Snapshot:
        """Every parameter right under the path that reads as a clinic; the others are logged."""
        by_id: dict[str, ClinicProfile] = {}
        by_key: dict[str, ClinicProfile] = {}
        key_owner: dict[str, str] = {}
        paginator = self._client().get_paginator("get_parameters_by_path")
        with translate_errors(SERVICE):
            # Pages are fetched while iterating, so the errors of every page surface here.
            parameters = [
                (str(p.get("Name", "")), str(p.get("Value", "")))
                for page in paginator.paginate(Path=self.path, Recursive=False)
                for p in page.get("Parameters", [])
            ]
        shared: set[str] = set()
        for name, value in parameters:
            try:
                profile, api_key_id = parse_clinic_parameter(name, value)
            except ValueError as e:
                log.error("clinic parameter left out", extra={"reason": str(e)})
                continue
            if api_key_id in key_owner:
                # A key must choose one clinic: neither of the two is answered for it.
                log.error(
                    "clinic parameters share one API key id; the key is left out",
                    extra={"parameters": [key_owner[api_key_id], name]},
                )
                shared.add(api_key_id)
            key_owner[api_key_id] = name
            by_id[profile.clinic_id] = profile
            by_key[api_key_id] = profile
        for api_key_id in shared:
            del by_key[api_key_id]
        return _Snapshot(MappingProxyType(by_id), MappingProxyType(by_key))


def parse_clinic_parameter(name: str, value: str) -> tuple[ClinicProfile, str]:
    """The clinic and its API key id from parameter `name`'s JSON `value`, or ValueError.

    Keys other than those Terraform writes are ignored, so a container still running the
    previous code reads the directory a newer Terraform wrote.
    """
    try:
        data: Any = json.loads(value)
    except json.JSONDecodeError as e:
        raise ValueError(f"clinic parameter {name} is not JSON: {e.msg}") from None
    if not isinstance(data, dict):
        raise ValueError(f"clinic parameter {name} is not a JSON object")
    clinic_id = data.get("clinic_id")
    if clinic_id != name.rpartition("/")[2]:
        raise ValueError(
            f"clinic parameter {name} holds clinic_id {clinic_id!r}: it must be the last part "
            "of its name"
        )
    api_key_id = data.get("api_key_id")
    if not isinstance(api_key_id, str) or not api_key_id:
        raise ValueError(f"clinic parameter {name} has no api_key_id")
    display_name = data.get("name")
    if not isinstance(display_name, str):
        raise ValueError(f"clinic parameter {name} has no name")
    public_base_url = data.get("public_base_url")
    if public_base_url is not None and not isinstance(public_base_url, str):
        raise ValueError(f"clinic parameter {name} has a public_base_url that is not a string")
    channels = data.get("channels") or ["sms"]
    if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
        raise ValueError(f"clinic parameter {name} has channels that are not a list of names")
    identities = {k: data.get(k) for k in ("sms_number", "whatsapp_phone_number_id")}
    if any(v is not None and not isinstance(v, str) for v in identities.values()):
        raise ValueError(f"clinic parameter {name} has a sending identity that is not a string")
    hold_minutes = data.get("hold_minutes")
    if hold_minutes is not None and not (isinstance(hold_minutes, int) and hold_minutes >= 1):
        raise ValueError(f"clinic parameter {name} has a hold_minutes that is not whole minutes")
    try:
        profile = ClinicProfile(
            clinic_id,
            display_name,
            public_base_url,
            channels=tuple(channels),
            sms_number=identities["sms_number"],
            whatsapp_phone_number_id=identities["whatsapp_phone_number_id"],
            hold_minutes=hold_minutes,
        )
    except ValidationError as e:
        raise ValueError(f"clinic parameter {name}: {e.message}") from None
    return profile, api_key_id
