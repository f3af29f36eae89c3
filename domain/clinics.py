"""Clinics: the tenant every doctor, appointment, request and event belongs to.

A clinic is chosen at the edge (the API key that called) and never by anything a client
sends; inside citas it travels as `clinic_id` on every aggregate and event, and every stored
key starts with it, so two clinics can never see, change or block each other's data.
"""

from __future__ import annotations

from typing import Final

from attrs import field, frozen

from domain.errors import ValidationError
from domain.text import check_text, matches, pattern

# Lower-case letters, digits and '-': never the upper-case prefixes of the table's own keys
# (`APPT#`, `OUTBOX#`), so a key that starts with a clinic id is never taken for one of those.
CLINIC_ID: Final = pattern(r"[a-z0-9-]{2,40}")
MAX_CLINIC_NAME: Final = 80
_URL: Final = pattern(r"https?://[!-~]+")
DEMO_CLINIC_ID: Final = "demo"
DEMO_CLINIC_NAME: Final = "Clínica Demo"


def check_clinic_id(value: object) -> str:
    """`value` if it is a well-formed clinic id (`[a-z0-9-]{2,40}`), else ValidationError."""
    if isinstance(value, str) and matches(CLINIC_ID, value):
        return value
    raise ValidationError(
        "a clinic id is 2-40 lower-case letters, digits or '-'", field="clinic_id"
    )


def require_clinic(expected: str, found: str, what: str) -> None:
    """Refuse a record of clinic `found` handed to the repository of clinic `expected`."""
    if found != expected:
        # A wiring bug, never a client's doing: the edge picks the clinic, and every record
        # comes from that clinic's own use cases.
        raise ValueError(f"{what} of clinic {found!r} given to clinic {expected!r}")


def _valid_id(_: object, __: object, value: str) -> None:
    check_clinic_id(value)


def _valid_name(_: object, __: object, value: str) -> None:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_CLINIC_NAME:
        raise ValidationError(
            f"a clinic's name is 1-{MAX_CLINIC_NAME} characters", field="clinic_name"
        )
    check_text(value, "clinic_name")


def _valid_url(_: object, __: object, value: str | None) -> None:
    if value is not None and not matches(_URL, value):
        raise ValidationError("public_base_url must be an http(s) URL", field="public_base_url")


@frozen
class ClinicProfile:
    """One clinic: its id, the display name that starts its messages, its links' base URL."""

    clinic_id: str = field(validator=_valid_id)
    name: str = field(validator=_valid_name)
    public_base_url: str | None = field(default=None, validator=_valid_url)

    def to_dict(self) -> dict[str, str]:
        """What `GET /clinic` answers."""
        return {"clinic_id": self.clinic_id, "name": self.name}


DEMO_CLINIC: Final = ClinicProfile(DEMO_CLINIC_ID, DEMO_CLINIC_NAME)
