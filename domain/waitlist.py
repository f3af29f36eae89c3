"""The waitlist: patients who want a doctor's earlier time, and the offers that hand it over.

An entry names a doctor, a patient, a range of the doctor's local dates (at most 60 days), an
optional daily window and a duration. When the doctor's time frees, the oldest waiting entry
it fits gets an **offer**: the slot is held for it (the doctor's cells are taken in the name
of the appointment the offer would become, so nobody else can book or move into it) until
`expires_at`. Accepting turns the hold into a `confirmed` appointment in one atomic step;
declining or the hold running out frees it and the entry waits again (never to be offered
that same start twice); withdrawing frees it and takes the entry off the list.

Stored statuses are `waiting`, `offered`, `booked` and `withdrawn`; `expired` is what a
waiting entry whose last date has passed shows (nothing needs writing for it).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from attrs import define, field, frozen

from domain import events as ev
from domain.appointment import require_aware
from domain.errors import (
    InvalidSlot,
    InvalidTransition,
    OfferExpired,
    StartInPast,
    TooFar,
    ValidationError,
)
from domain.patient import Patient
from domain.schedule import MAX_DURATION_MINUTES, Doctor, local_day_bounds

# The longest range an entry may wait over, in days between `from` and `to`.
MAX_RANGE_DAYS: Final = 60
DEFAULT_HOLD_MINUTES: Final = 30
_HHMM = "%H:%M"


class WaitStatus(enum.StrEnum):
    """Where a waitlist entry is; `expired` is only ever shown, never stored."""

    WAITING = "waiting"
    OFFERED = "offered"
    BOOKED = "booked"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


class Release(enum.StrEnum):
    """Why an offer ended without a booking."""

    DECLINED = "declined"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"


@frozen
class Offer:
    """A slot held for an entry until `expires_at`, in the name of the appointment it would be."""

    appointment_id: str
    start: datetime
    end: datetime
    expires_at: datetime
    offered_at: datetime

    def is_live(self, now: datetime) -> bool:
        """Whether the offer can still be accepted at `now`."""
        return now < self.expires_at

    def snapshot(self) -> dict[str, str]:
        """The stored form, instants in UTC."""
        return {
            "appointment_id": self.appointment_id,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "expires_at": _iso(self.expires_at),
            "offered_at": _iso(self.offered_at),
        }

    @classmethod
    def from_snapshot(cls, raw: Mapping[str, Any]) -> Offer:
        """Inverse of `snapshot`."""
        return cls(
            appointment_id=raw["appointment_id"],
            start=datetime.fromisoformat(raw["start"]),
            end=datetime.fromisoformat(raw["end"]),
            expires_at=datetime.fromisoformat(raw["expires_at"]),
            offered_at=datetime.fromisoformat(raw["offered_at"]),
        )


def parse_hhmm(value: object, name: str) -> time:
    """A local `HH:MM` of the day, or ValidationError."""
    if not isinstance(value, str) or len(value) != 5:
        raise ValidationError(f"{name} is a local time HH:MM", field=name)
    try:
        parsed = datetime.strptime(value, _HHMM).time()
    except ValueError as e:
        raise ValidationError(f"{name} is a local time HH:MM", field=name) from e
    return parsed


@define
class WaitlistEntry:
    """One patient waiting for a doctor's time; `offer` is set while a slot is held for it."""

    clinic_id: str
    waitlist_id: str
    doctor_id: str
    time_zone: str
    patient: Patient
    from_day: date
    to_day: date
    duration_minutes: int
    status: WaitStatus
    version: int
    created_at: datetime
    updated_at: datetime
    earliest: time | None = None
    latest: time | None = None
    offer: Offer | None = None
    appointment_id: str | None = None
    # Starts this entry was offered and let go: never offered again.
    passed: frozenset[datetime] = frozenset()
    events: list[ev.Event] = field(factory=list, eq=False, repr=False)

    @classmethod
    def join(
        cls,
        *,
        waitlist_id: str,
        doctor: Doctor,
        patient: Patient,
        from_day: date,
        to_day: date,
        earliest: time | None,
        latest: time | None,
        duration_minutes: int | None,
        now: datetime,
    ) -> WaitlistEntry:
        """A new waiting entry, checked: a future range of at most 60 days, a whole slot count."""
        now = require_aware(now, "now")
        if to_day < from_day:
            raise ValidationError("to must not be before from", field="to")
        if (to_day - from_day).days > MAX_RANGE_DAYS:
            raise ValidationError(
                f"from and to are at most {MAX_RANGE_DAYS} days apart", field="to"
            )
        if earliest is not None and latest is not None and latest <= earliest:
            raise ValidationError("earliest must come before latest", field="latest")
        today = now.astimezone(doctor.zone).date()
        if from_day < today:
            raise StartInPast(
                "the range starts before today (in the doctor's time zone)", today=str(today)
            )
        horizon = (now + timedelta(days=doctor.booking_horizon_days)).astimezone(doctor.zone)
        if from_day > horizon.date():
            raise TooFar(
                f"this doctor takes bookings at most {doctor.booking_horizon_days} days ahead",
                booking_horizon_days=doctor.booking_horizon_days,
            )
        minutes = doctor.slot_minutes if duration_minutes is None else duration_minutes
        _check_minutes(minutes, doctor)
        if earliest is not None and latest is not None:
            window = (latest.hour * 60 + latest.minute) - (earliest.hour * 60 + earliest.minute)
            if window < minutes:
                raise ValidationError(
                    "the window from earliest to latest is shorter than the visit",
                    field="latest",
                )
        return cls(
            clinic_id=doctor.clinic_id,
            waitlist_id=waitlist_id,
            doctor_id=doctor.doctor_id,
            time_zone=doctor.time_zone,
            patient=patient,
            from_day=from_day,
            to_day=to_day,
            duration_minutes=minutes,
            status=WaitStatus.WAITING,
            version=1,
            created_at=now,
            updated_at=now,
            earliest=earliest,
            latest=latest,
        )

    @property
    def zone(self) -> ZoneInfo:
        """The doctor's zone, in which the dates and the window are read."""
        return ZoneInfo(self.time_zone)

    @property
    def ends_at(self) -> datetime:
        """The instant the range's last local date ends: no offer starts after it."""
        return local_day_bounds(self.to_day, self.zone)[1]

    def shown_status(self, now: datetime) -> WaitStatus:
        """The status as shown: a waiting entry whose range has passed is `expired`."""
        if self.status is WaitStatus.WAITING and now >= self.ends_at:
            return WaitStatus.EXPIRED
        return self.status

    def held_offer(self) -> Offer:
        """The offer this entry holds; ValueError for an entry without one (a caller's bug)."""
        if self.offer is None:
            raise ValueError("the entry carries no offer to hold")
        return self.offer

    def is_waiting(self, now: datetime) -> bool:
        """Whether the entry may be offered time now."""
        return self.shown_status(now) is WaitStatus.WAITING

    def fits(self, start: datetime) -> bool:
        """Whether a visit of this entry's length at `start` is what the entry asks for."""
        wall = start.astimezone(self.zone)
        end = (start + timedelta(minutes=self.duration_minutes)).astimezone(self.zone)
        if not self.from_day <= wall.date() <= self.to_day or start in self.passed:
            return False
        if self.earliest is not None and wall.time() < self.earliest:
            return False
        # `latest` bounds the end: "between 09:00 and 12:00" means out by 12:00.
        return self.latest is None or (end.date() == wall.date() and end.time() <= self.latest)

    # --- changes ---------------------------------------------------------------------------

    def make_offer(self, offer: Offer, *, event_id: str) -> None:
        """Hold `offer` for this entry (it must be waiting)."""
        if not self.is_waiting(offer.offered_at):
            raise InvalidTransition(
                f"an entry {self.shown_status(offer.offered_at)} cannot be offered time",
                status=str(self.shown_status(offer.offered_at)),
            )
        self.offer = offer
        self._change(WaitStatus.OFFERED, offer.offered_at)
        self._record(ev.WaitlistOfferMade, offer.offered_at, event_id, self._offer_data(offer))

    def offer_to_accept(self, now: datetime) -> Offer:
        """The offer `accept` would take at `now`; OfferExpired or InvalidTransition if none."""
        return self._live_offer(now)

    def accept(self, *, now: datetime, event_id: str) -> Offer:
        """Take the offer: the entry is `booked` with the offer's appointment; OfferExpired late."""
        offer = self._live_offer(now)
        self.offer = None
        self.appointment_id = offer.appointment_id
        self._change(WaitStatus.BOOKED, now)
        data = self._offer_data(offer)
        self._record(ev.WaitlistOfferAccepted, now, event_id, data)
        return offer

    def release(self, reason: Release, *, now: datetime, event_id: str) -> Offer:
        """End the offer without a booking: the entry waits again (or is withdrawn)."""
        offer = self.offer
        if self.status is not WaitStatus.OFFERED or offer is None:
            raise InvalidTransition(
                "the entry has no offer to let go", status=str(self.shown_status(now))
            )
        if reason is Release.EXPIRED and offer.is_live(now):
            raise InvalidTransition("the offer has not expired yet", status=str(self.status))
        self.offer = None
        self.passed = frozenset({*self._current_passed(now), offer.start})
        target = WaitStatus.WITHDRAWN if reason is Release.WITHDRAWN else WaitStatus.WAITING
        self._change(target, now)
        data = self._offer_data(offer) | {"reason": str(reason)}
        self._record(ev.WaitlistOfferExpired, now, event_id, data)
        return offer

    def withdraw(self, *, now: datetime, event_id: str) -> Offer | None:
        """Leave the waitlist; a held offer is let go. Returns it, if there was one."""
        if self.status is WaitStatus.WITHDRAWN:
            return None
        if self.status is WaitStatus.BOOKED:
            raise InvalidTransition(
                "the entry is booked; cancel its appointment instead",
                status=str(self.status),
                appointment_id=self.appointment_id,
            )
        if self.status is WaitStatus.OFFERED:
            return self.release(Release.WITHDRAWN, now=now, event_id=event_id)
        self._change(WaitStatus.WITHDRAWN, now)
        return None

    def _live_offer(self, now: datetime) -> Offer:
        offer = self.offer
        if self.shown_status(now) is WaitStatus.WAITING and self.passed:
            # Its offer ran out (or was declined) and the slot went on: too late to take it.
            raise OfferExpired("the entry has no offer now; it expired or was declined")
        if self.status is not WaitStatus.OFFERED or offer is None:
            raise InvalidTransition(
                "the entry has no offer to accept",
                status=str(self.shown_status(now)),
                appointment_id=self.appointment_id,
            )
        if not offer.is_live(now):
            raise OfferExpired(
                "the offer expired; the slot went back to the waitlist",
                expired_at=offer.expires_at.astimezone(self.zone).isoformat(),
            )
        return offer

    def _current_passed(self, now: datetime) -> frozenset[datetime]:
        # Starts already past can never be offered again: forgetting them keeps the item small.
        return frozenset(s for s in self.passed if s > now)

    def _change(self, status: WaitStatus, now: datetime) -> None:
        self.status = status
        self.version += 1
        self.updated_at = now

    def _offer_data(self, offer: Offer) -> dict[str, str]:
        return {
            "waitlist_id": self.waitlist_id,
            "doctor_id": self.doctor_id,
            "appointment_id": offer.appointment_id,
            "start": _iso(offer.start),
            "end": _iso(offer.end),
            "expires_at": _iso(offer.expires_at),
        }

    def _record(
        self, kind: type[ev.Event], now: datetime, event_id: str, data: dict[str, str]
    ) -> None:
        self.events.append(
            kind(
                event_id=event_id,
                clinic_id=self.clinic_id,
                # Not an appointment's event: the offer names the appointment it would become
                # in `data`; the events of one entry are ordered by its id (`group_key`).
                appointment_id=None,
                version=self.version,
                occurred_at=now,
                data=data,
            )
        )

    def collect_new_events(self) -> list[ev.Event]:
        """Hand over the events recorded since the last call (the repository stores them)."""
        new, self.events = self.events, []
        return new

    def copy(self) -> WaitlistEntry:
        """An independent copy without pending events."""
        return WaitlistEntry.from_snapshot(self.snapshot())

    def snapshot(self) -> dict[str, Any]:
        """The stored form, instants in UTC."""
        out: dict[str, Any] = {
            "clinic_id": self.clinic_id,
            "waitlist_id": self.waitlist_id,
            "doctor_id": self.doctor_id,
            "time_zone": self.time_zone,
            "patient": self.patient.to_dict(),
            "from": self.from_day.isoformat(),
            "to": self.to_day.isoformat(),
            "duration_minutes": self.duration_minutes,
            "status": str(self.status),
            "version": self.version,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "passed": sorted(_iso(s) for s in self.passed),
        }
        if self.earliest is not None:
            out["earliest"] = self.earliest.strftime(_HHMM)
        if self.latest is not None:
            out["latest"] = self.latest.strftime(_HHMM)
        if self.offer is not None:
            out["offer"] = self.offer.snapshot()
        if self.appointment_id is not None:
            out["appointment_id"] = self.appointment_id
        return out

    @classmethod
    def from_snapshot(cls, raw: Mapping[str, Any]) -> WaitlistEntry:
        """Inverse of `snapshot`."""
        earliest, latest = raw.get("earliest"), raw.get("latest")
        offer = raw.get("offer")
        return cls(
            clinic_id=raw["clinic_id"],
            waitlist_id=raw["waitlist_id"],
            doctor_id=raw["doctor_id"],
            time_zone=raw["time_zone"],
            patient=Patient.from_dict(raw["patient"]),
            from_day=date.fromisoformat(raw["from"]),
            to_day=date.fromisoformat(raw["to"]),
            duration_minutes=int(raw["duration_minutes"]),
            status=WaitStatus(raw["status"]),
            version=int(raw["version"]),
            created_at=datetime.fromisoformat(raw["created_at"]),
            updated_at=datetime.fromisoformat(raw["updated_at"]),
            earliest=parse_hhmm(earliest, "earliest") if earliest is not None else None,
            latest=parse_hhmm(latest, "latest") if latest is not None else None,
            offer=Offer.from_snapshot(offer) if offer is not None else None,
            appointment_id=raw.get("appointment_id"),
            passed=frozenset(datetime.fromisoformat(s) for s in raw.get("passed", ())),
        )


def _check_minutes(minutes: object, doctor: Doctor) -> None:
    if isinstance(minutes, bool) or not isinstance(minutes, int):
        raise ValidationError("duration_minutes must be an integer", field="duration_minutes")
    if not 1 <= minutes <= MAX_DURATION_MINUTES:
        raise ValidationError(
            f"duration_minutes is 1-{MAX_DURATION_MINUTES}", field="duration_minutes"
        )
    if minutes % doctor.slot_minutes:
        raise InvalidSlot(
            f"duration must be a multiple of {doctor.slot_minutes} minutes",
            slot_minutes=doctor.slot_minutes,
        )


def hold_until(now: datetime, start: datetime, hold_minutes: int, notice_minutes: int) -> datetime:
    """When an offer made at `now` for `start` ends: after the hold, or when notice runs out."""
    return min(now + timedelta(minutes=hold_minutes), start - timedelta(minutes=notice_minutes))


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()
