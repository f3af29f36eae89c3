"""Clinics: the tenant every doctor, appointment, request and event belongs to.

A clinic is chosen at the edge (the API key that called) and never by anything a client
sends; inside citas it travels as `clinic_id` on every aggregate and event, and every stored
key starts with it, so two clinics can never see, change or block each other's data.
"""

from __future__ import annotations

from collections.abc import Sequence
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


_E164: Final = pattern(r"\+[1-9][0-9]{7,14}")
_NUMBER_ID: Final = pattern(r"[A-Za-z0-9:/._-]{1,200}")
CHANNELS: Final = ("sms", "whatsapp")


def _valid_channels(_: object, __: object, value: tuple[str, ...]) -> None:
    if (
        not isinstance(value, tuple)
        or not value
        or len(set(value)) != len(value)
        or any(c not in CHANNELS for c in value)
    ):
        raise ValidationError(
            "channels is a non-empty list of distinct 'sms' and 'whatsapp'", field="channels"
        )


def _valid_number(_: object, __: object, value: str | None) -> None:
    if value is not None and not matches(_E164, value):
        raise ValidationError("sms_number must be E.164, e.g. +51987654321", field="sms_number")


def _valid_number_id(_: object, __: object, value: str | None) -> None:
    if value is not None and not matches(_NUMBER_ID, value):
        raise ValidationError(
            "whatsapp_phone_number_id is not a phone number id", field="whatsapp_phone_number_id"
        )


def _channels(value: object) -> object:
    return tuple(value) if isinstance(value, list) else value


MAX_HOLD_MINUTES: Final = 24 * 60


def _valid_hold(_: object, __: object, value: int | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_HOLD_MINUTES:
        raise ValidationError(f"hold_minutes is 1-{MAX_HOLD_MINUTES}", field="hold_minutes")


@frozen
class ClinicProfile:
    """One clinic: its id, the display name that starts its messages, its links' base URL.

    `channels` are the ways it writes to patients, the first being the usual one (a
    reminder at risk goes on all of them); `sms_number` and `whatsapp_phone_number_id` are
    its own sending identities, also what tells an inbound message's clinic. None: the
    deployment's default identity.
    """

    clinic_id: str = field(validator=_valid_id)
    name: str = field(validator=_valid_name)
    public_base_url: str | None = field(default=None, validator=_valid_url)
    channels: tuple[str, ...] = field(
        default=("sms",), converter=_channels, validator=_valid_channels
    )
    sms_number: str | None = field(default=None, validator=_valid_number)
    whatsapp_phone_number_id: str | None = field(default=None, validator=_valid_number_id)
    # How long a waitlist offer holds its slot; None: the deployment's default.
    hold_minutes: int | None = field(default=None, validator=_valid_hold)

    def to_dict(self) -> dict[str, str]:
        """What `GET /clinic` answers."""
        return {"clinic_id": self.clinic_id, "name": self.name}


DEMO_CLINIC: Final = ClinicProfile(DEMO_CLINIC_ID, DEMO_CLINIC_NAME)


def clinic_for_recipient(
    clinics: Sequence[ClinicProfile], channel: str, recipient: str | None
) -> ClinicProfile | None:
    """The clinic an inbound message was sent to: by its number on that channel.

    A deployment of one clinic that names no number of its own answers for the default one;
    with several clinics, an unknown number belongs to none (it is dropped, never guessed).
    """
    if recipient:
        wanted = _identity(channel, recipient)
        for clinic in clinics:
            own = clinic.sms_number if channel == "sms" else clinic.whatsapp_phone_number_id
            if own is not None and _identity(channel, own) == wanted:
                return clinic
    if len(clinics) == 1:
        only = clinics[0]
        own = only.sms_number if channel == "sms" else only.whatsapp_phone_number_id
        return only if own is None or not recipient else None
    return None


def _identity(channel: str, value: str) -> str:
    """A WhatsApp number's id whatever its spelling (`phone-number-id-<id>` or its ARN)."""
    if channel != "whatsapp":
        return value
    if value.startswith("arn:") and "phone-number-id/" in value:
        return value.rsplit("phone-number-id/", 1)[1]
    return value.removeprefix("phone-number-id-")
