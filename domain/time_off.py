"""Time off: a stretch of absolute time in which a doctor takes no appointments."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from attrs import frozen

from domain.clinics import check_clinic_id
from domain.errors import ValidationError
from domain.text import check_text, matches, pattern

TIME_OFF_ID = pattern(r"[A-Za-z0-9_-]{1,64}")
# Longer stretches are several blocks: a block must stay cheap to check against bookings.
MAX_TIME_OFF = timedelta(days=90)
MAX_REASON = 200


def _aware(value: object, name: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(f"{name} must be an instant with a UTC offset", field=name)
    return value.astimezone(UTC)


@frozen
class TimeOff:
    """One block of a doctor's time off, [start, end) in UTC; `reason` is for staff only."""

    clinic_id: str
    doctor_id: str
    time_off_id: str
    start: datetime
    end: datetime
    reason: str | None = None

    @classmethod
    def create(
        cls,
        *,
        clinic_id: str,
        doctor_id: str,
        time_off_id: str,
        start: datetime,
        end: datetime,
        reason: str | None = None,
    ) -> TimeOff:
        """A checked block: aware instants, `end` after `start`, at most 90 days long."""
        check_clinic_id(clinic_id)
        if not matches(TIME_OFF_ID, time_off_id):
            raise ValidationError(
                "time_off_id is 1-64 letters, digits, '-' or '_'", field="time_off_id"
            )
        begins, ends = _aware(start, "start"), _aware(end, "end")
        if ends <= begins:
            raise ValidationError("end must come after start", field="end")
        if ends - begins > MAX_TIME_OFF:
            raise ValidationError(
                f"a block of time off lasts at most {MAX_TIME_OFF.days} days; add several",
                field="end",
            )
        if reason is not None:
            if not isinstance(reason, str) or len(reason) > MAX_REASON:
                raise ValidationError(f"reason is at most {MAX_REASON} characters", field="reason")
            check_text(reason, "reason", multiline=True)
        return cls(clinic_id, doctor_id, time_off_id, begins, ends, reason)

    def overlaps(self, start: datetime, end: datetime) -> bool:
        """Whether the block shares any instant with [start, end)."""
        return self.start < end and start < self.end

    def snapshot(self) -> dict[str, Any]:
        """The stored form, instants in UTC."""
        out: dict[str, Any] = {
            "clinic_id": self.clinic_id,
            "doctor_id": self.doctor_id,
            "time_off_id": self.time_off_id,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
        }
        if self.reason is not None:
            out["reason"] = self.reason
        return out

    @classmethod
    def from_snapshot(cls, raw: Mapping[str, Any]) -> TimeOff:
        """Inverse of `snapshot`."""
        return cls(
            clinic_id=raw["clinic_id"],
            doctor_id=raw["doctor_id"],
            time_off_id=raw["time_off_id"],
            start=datetime.fromisoformat(raw["start"]),
            end=datetime.fromisoformat(raw["end"]),
            reason=raw.get("reason"),
        )


def overlapping_from(start: datetime) -> datetime:
    """The earliest start of a block that can still overlap an instant at or after `start`."""
    return start - MAX_TIME_OFF
