"""Domain errors: each maps 1:1 onto an error code of the contract."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self


class CitasError(Exception):
    """Base of every error the domain raises on purpose."""

    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details: Mapping[str, Any] = details


class ValidationError(CitasError):
    """A request is malformed: bad format, missing or unknown field, naive time."""

    code = "validation_error"


class NotFound(CitasError):
    """The doctor, appointment or booking request does not exist."""

    code = "not_found"


class _TimeTaken(CitasError):
    """Someone's time is held by another active appointment."""

    holder: ClassVar[str]

    @classmethod
    def taken(cls, **details: Any) -> Self:
        """The error every backend raises, in the same words, when the time is taken."""
        return cls(f"the {cls.holder} already has an appointment at that time", **details)


class SlotUnavailable(_TimeTaken):
    """The doctor already has an active appointment overlapping that time."""

    code = "slot_unavailable"
    holder = "doctor"


class PatientDoubleBooked(_TimeTaken):
    """The patient already has an active appointment overlapping that time."""

    code = "patient_double_booked"
    holder = "patient"


class InvalidTransition(CitasError):
    """The status machine does not allow that change from the current status."""

    code = "invalid_transition"


class TimeZoneConflict(CitasError):
    """A doctor's time zone cannot change while appointments of theirs are still to come.

    Their instants, local dates and messages were set in the old zone; changing it would
    silently show every one of them at another wall time.
    """

    code = "time_zone_conflict"


class VersionConflict(CitasError):
    """The expected version did not match, or a concurrent change won the race."""

    code = "version_conflict"


class StartInPast(CitasError):
    """The requested start time is not in the future."""

    code = "start_in_past"


class OutsideWorkingHours(CitasError):
    """The requested time is not inside the doctor's working hours."""

    code = "outside_working_hours"


class TooSoon(CitasError):
    """The start is sooner than the doctor's minimum notice allows."""

    code = "too_soon"


class TooFar(CitasError):
    """The start lies beyond the doctor's booking horizon."""

    code = "too_far"


class DoctorUnavailable(CitasError):
    """The doctor is on time off then."""

    code = "doctor_unavailable"


class TimeOffConflict(CitasError):
    """Time off would cover active appointments; `details.appointment_ids` names them."""

    code = "time_off_conflict"
    # How many appointments the error names; `count` says how many there are.
    listed: ClassVar[int] = 50

    @classmethod
    def covering(cls, appointment_ids: Sequence[str], waitlist_ids: Sequence[str] = ()) -> Self:
        """The refusal every backend raises for time off over these appointments or offers.

        `waitlist_ids`: entries whose offered slot the block would cover (held for them);
        `count` counts the appointments only.
        """
        ids = list(appointment_ids)
        if waitlist_ids:
            held = f"{len(waitlist_ids)} slots held for waitlist offers"
            covered = f"{len(ids)} active appointments and {held}" if ids else held
            return cls(
                f"the time off covers {covered}; wait for the offers to end or withdraw them",
                appointment_ids=ids[: cls.listed],
                count=len(ids),
                waitlist_ids=list(waitlist_ids)[: cls.listed],
            )
        return cls(
            f"the time off covers {len(ids)} active appointments; move or cancel them first",
            appointment_ids=ids[: cls.listed],
            count=len(ids),
        )


class InvalidSlot(CitasError):
    """The time is not on a slot boundary or the duration is not a multiple of the slot."""

    code = "invalid_slot"


class IdempotencyKeyReused(CitasError):
    """An idempotency key was used before with a different request."""

    code = "idempotency_key_reused"


class OfferExpired(CitasError):
    """A waitlist offer was accepted after its hold ran out: nothing was booked."""

    code = "offer_expired"


class TemporarilyUnavailable(CitasError):
    """The backend is throttled or down; nothing was written, the caller may retry."""

    code = "temporarily_unavailable"

    def __init__(self, message: str, retry_after_seconds: int = 1, **details: Any) -> None:
        super().__init__(message, **details)
        self.retry_after_seconds = retry_after_seconds


class IdempotencyKeyTaken(Exception):
    """Raised by a repository when a concurrent request claimed the same key first.

    Internal signal, never shown to a caller: the use case re-reads the key and answers
    with the stored result or `IdempotencyKeyReused`.
    """

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class ZoneChanged(Exception):
    """Raised by a doctor repository asked to keep the zone when the stored doctor has another.

    Internal signal: the use case then checks whether the change is allowed.
    """


class ScheduleChanged(Exception):
    """Raised by a repository when the doctor's schedule version is not the one checked.

    Internal signal: the use case reloads the doctor's schedule, checks the rules again and
    retries once. Nothing was written.
    """


class InvalidCursor(ValueError):
    """A repository could not understand a pagination cursor."""
