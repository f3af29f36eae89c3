"""The patient of an appointment: a name and a phone, and the pseudonym that stands for them."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from attrs import frozen

from domain.errors import ValidationError
from domain.text import MAX_NAME, check_text, matches, pattern

# Canonical E.164 only: a '+', a country code that does not start with 0, at most 15 digits,
# ASCII, nothing before or after. One spelling per phone, so one patient per phone.
_E164 = pattern(r"\+[1-9][0-9]{7,14}")
_DOCUMENT_ID = pattern(r"[A-Za-z0-9-]{1,30}")


def check_optional(value: str | None, form: re.Pattern[str] | None, name: str, limit: int) -> None:
    """Refuse `value` unless None or a string of at most `limit` characters matching `form`."""
    if value is None:
        return
    if not isinstance(value, str) or len(value) > limit or (form and not matches(form, value)):
        raise ValidationError(f"{name} is not valid", field=name)
    check_text(value, name, multiline=form is None)


def patient_key(phone: str) -> str:
    """The pseudonym of a phone (`Patient.key`): keys, logs and events carry it, not the phone."""
    return hashlib.sha256(phone.encode()).hexdigest()[:32]


@frozen
class Patient:
    """Who the appointment is for; the phone (E.164) identifies the patient."""

    name: str
    phone: str
    document_id: str | None = None

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip() or len(self.name) > MAX_NAME:
            raise ValidationError(f"patient.name is 1-{MAX_NAME} characters", field="patient.name")
        check_text(self.name, "patient.name")
        if not matches(_E164, self.phone):
            raise ValidationError(
                "patient.phone must be E.164, e.g. +51987654321", field="patient.phone"
            )
        check_optional(self.document_id, _DOCUMENT_ID, "patient.document_id", 30)

    @property
    def key(self) -> str:
        """A stable pseudonym of the phone, so lock keys and logs never hold the number."""
        return patient_key(self.phone)

    def to_dict(self) -> dict[str, str]:
        """The stored and queued form (the API's shape is the edge's: `patient_json`)."""
        out = {"name": self.name, "phone": self.phone}
        if self.document_id is not None:
            out["document_id"] = self.document_id
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Patient:
        """Inverse of `to_dict`."""
        return cls(raw["name"], raw["phone"], raw.get("document_id"))
