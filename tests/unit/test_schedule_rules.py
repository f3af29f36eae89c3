"""The schedule rules as a clinic lives them: notice, horizon, holidays, buffers, time off.

Every rule is asked of each route that books or moves (booking, the booking worker,
reschedule), and of availability, through one judge (`domain.rules.Rules`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from adapters.holidays import LibraryHolidayCalendar
from adapters.memory.doctors import InMemoryDoctorRepository
from adapters.memory.store import (
    InMemoryAppointmentRepository,
    InMemoryBookingRequestQueue,
    InMemoryBookingRequestRepository,
    MemoryStore,
)
from adapters.system import FixedClock, UuidV7Generator
from domain.commands import (
    CancelAppointment,
    ListTimeOff,
    PutTimeOff,
    RegisterDoctor,
    RemoveTimeOff,
    RescheduleAppointment,
)
from domain.countries import CountryCatalog
from domain.errors import (
    CitasError,
    DoctorUnavailable,
    NotFound,
    OutsideWorkingHours,
    SlotUnavailable,
    TimeOffConflict,
    TooFar,
    TooSoon,
    ValidationError,
)
from domain.use_cases import Clinic
from tests.unit.conftest import LIMA, NOW, WEEKDAY_HOURS, at, booking

WED = date(2026, 12, 2)
THU = date(2026, 12, 3)
# Inmaculada Concepción: a national holiday in Peru (and Chile), a Tuesday.
HOLIDAY = date(2026, 12, 8)


class Clinics:
    """Two containers' use cases over one memory store: each has its own schedule cache."""

    def __init__(self) -> None:
        self.store = MemoryStore()
        self.clock = FixedClock(NOW.astimezone(UTC))
        self.a = self.container()
        self.b = self.container()

    def container(self) -> Clinic:
        return Clinic(
            InMemoryAppointmentRepository(self.store, clinic_id="demo"),
            InMemoryDoctorRepository(self.store, clinic_id="demo"),
            InMemoryBookingRequestRepository(self.store, clinic_id="demo"),
            InMemoryBookingRequestQueue(),
            self.clock,
            UuidV7Generator(),
            CountryCatalog(),
            clinic_id="demo",
            holidays=LibraryHolidayCalendar(),
        )

    def doctor(self, **rules: Any) -> None:
        self.a.register_doctor(RegisterDoctor("rosa", "Dra. Rosa", "PE", WEEKDAY_HOURS, **rules))


@pytest.fixture
def clinics() -> Clinics:
    found = Clinics()
    found.doctor()
    return found


def starts(clinic: Clinic, day: date) -> list[str]:
    slots = clinic.availability("rosa", day).slots
    return [s.start.astimezone(LIMA).strftime("%H:%M") for s in slots]


def refusal(action: Any, *args: Any) -> CitasError:
    with pytest.raises(CitasError) as caught:
        action(*args)
    return caught.value


def time_off(start: datetime, end: datetime, block: str = "t1", reason: str | None = None) -> Any:
    return PutTimeOff("rosa", block, start, end, reason)


# Defaults and ranges ---------------------------------------------------------------------


def test_a_doctor_gets_the_contracts_defaults(clinics: Clinics) -> None:
    doctor = clinics.a.doctor("rosa")
    assert (doctor.buffer_minutes, doctor.min_notice_minutes) == (0, 60)
    assert (doctor.booking_horizon_days, doctor.works_on_holidays) == (90, False)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("buffer_minutes", -1),
        ("buffer_minutes", 61),
        ("min_notice_minutes", 10081),
        ("booking_horizon_days", 0),
        ("booking_horizon_days", 366),
        ("booking_horizon_days", True),
        ("works_on_holidays", 1),
    ],
)
def test_out_of_range_rules_are_refused_and_nothing_is_stored(
    clinics: Clinics, field: str, value: object
) -> None:
    before = clinics.a.doctor("rosa")
    with pytest.raises(ValidationError) as caught:
        clinics.doctor(**{field: value})
    assert caught.value.details["field"] == field
    assert clinics.a.doctor("rosa") == before


# Notice and horizon ----------------------------------------------------------------------


def test_a_booking_sooner_than_the_notice_is_too_soon(clinics: Clinics) -> None:
    clinics.clock.set(at(WED, "09:01"))
    assert isinstance(refusal(clinics.a.book, booking(at(WED, "10:00"))), TooSoon)
    assert starts(clinics.a, WED)[0] == "10:30"
    clinics.a.book(booking(at(WED, "10:30")))


def test_notice_zero_books_until_the_start_and_the_past_stays_refused(clinics: Clinics) -> None:
    clinics.doctor(min_notice_minutes=0)
    clinics.clock.set(at(WED, "09:59"))
    clinics.a.book(booking(at(WED, "10:00")))
    assert refusal(clinics.a.book, booking(at(WED, "09:30"), who=2)).code == "start_in_past"


def test_a_booking_beyond_the_horizon_is_too_far(clinics: Clinics) -> None:
    clinics.doctor(booking_horizon_days=7, works_on_holidays=True)
    last = NOW + timedelta(days=7)
    assert last.date() == date(2026, 12, 8) and last.strftime("%H:%M") == "08:00"
    # A week ahead to the minute is the horizon: 09:00 the day after is beyond it.
    assert isinstance(refusal(clinics.a.book, booking(at(date(2026, 12, 9), "09:00"))), TooFar)
    assert starts(clinics.a, date(2026, 12, 9)) == []
    clinics.a.book(booking(at(date(2026, 12, 7), "17:30")))


# Holidays --------------------------------------------------------------------------------


def test_a_holiday_is_outside_working_hours_and_names_the_holiday(clinics: Clinics) -> None:
    error = refusal(clinics.a.book, booking(at(HOLIDAY, "10:00")))
    assert isinstance(error, OutsideWorkingHours)
    assert error.details["holiday"] == "Inmaculada Concepción"
    assert starts(clinics.a, HOLIDAY) == []


def test_a_doctor_who_works_on_holidays_books_them(clinics: Clinics) -> None:
    clinics.doctor(works_on_holidays=True)
    assert len(starts(clinics.a, HOLIDAY)) == 16
    clinics.a.book(booking(at(HOLIDAY, "10:00")))


def test_the_holidays_of_a_country_come_from_the_library(clinics: Clinics) -> None:
    year, found = clinics.a.national_holidays("PE", 2026)
    names = dict(found)
    assert year == 2026
    assert names[date(2026, 7, 28)] == "Día de la Independencia"
    assert names[date(2026, 12, 8)] == "Inmaculada Concepción"
    assert [d for d, _ in found] == sorted(names)
    assert clinics.a.national_holidays("CL")[0] == 2026


@pytest.mark.parametrize(("country", "year"), [("AR", 2026), ("PE", 1999), ("PE", 2101)])
def test_holidays_of_an_unserved_country_or_year_are_a_validation_error(
    clinics: Clinics, country: str, year: int
) -> None:
    with pytest.raises(ValidationError):
        clinics.a.national_holidays(country, year)


# Buffers ---------------------------------------------------------------------------------


def test_the_buffer_keeps_time_free_on_both_sides(clinics: Clinics) -> None:
    clinics.doctor(buffer_minutes=10)
    clinics.a.book(booking(at(WED, "11:00")))
    # 10:30-11:00 ends at 11:00 (0 minutes before), 11:30-12:00 starts 0 after: both taken.
    assert "10:30" not in starts(clinics.a, WED) and "11:30" not in starts(clinics.a, WED)
    for hhmm in ("10:30", "11:30"):
        assert isinstance(refusal(clinics.a.book, booking(at(WED, hhmm), who=2)), SlotUnavailable)
    assert {"10:00", "12:00"} <= set(starts(clinics.a, WED))
    clinics.a.book(booking(at(WED, "12:00"), who=2))
    clinics.a.book(booking(at(WED, "10:00"), who=3))


def test_a_buffer_that_is_not_a_multiple_of_five_still_keeps_exactly_that(
    clinics: Clinics,
) -> None:
    clinics.a.register_doctor(
        RegisterDoctor("rosa", "Dra. Rosa", "PE", WEEKDAY_HOURS, slot_minutes=10, buffer_minutes=7)
    )
    clinics.a.book(booking(at(WED, "11:00"), minutes=10))
    free = starts(clinics.a, WED)
    # 11:00-11:10 booked: 11:10 starts 0 minutes after it (< 7), 11:20 starts 10 after;
    # 10:50 ends 0 minutes before it, 10:40 ends 10 before.
    assert "11:10" not in free and "11:20" in free and "10:50" not in free and "10:40" in free
    clinics.a.book(booking(at(WED, "11:20"), who=2, minutes=10))


def test_a_new_buffer_applies_to_the_appointments_already_booked(clinics: Clinics) -> None:
    clinics.a.book(booking(at(WED, "11:00")))
    assert "11:30" in starts(clinics.a, WED)
    clinics.doctor(buffer_minutes=30)
    assert "11:30" not in starts(clinics.a, WED) and "12:00" in starts(clinics.a, WED)
    assert isinstance(refusal(clinics.a.book, booking(at(WED, "11:30"), who=2)), SlotUnavailable)


def test_a_move_next_to_its_own_old_time_is_not_blocked_by_its_own_buffer(
    clinics: Clinics,
) -> None:
    clinics.doctor(buffer_minutes=30)
    booked = clinics.a.book(booking(at(WED, "11:00")))
    moved = clinics.a.reschedule(RescheduleAppointment(booked.appointment_id, at(WED, "11:30")))
    assert moved.start == at(WED, "11:30")


# Time off --------------------------------------------------------------------------------


def test_time_off_blocks_booking_and_availability_until_it_is_removed(clinics: Clinics) -> None:
    result = clinics.a.put_time_off(time_off(at(WED, "10:00"), at(WED, "12:00"), reason="congreso"))
    assert result.created and result.block.reason == "congreso"
    assert not {"10:00", "10:30", "11:00", "11:30"} & set(starts(clinics.a, WED))
    error = refusal(clinics.a.book, booking(at(WED, "11:30")))
    assert isinstance(error, DoctorUnavailable)
    assert "congreso" not in str(error.details) and "congreso" not in error.message
    clinics.a.remove_time_off(RemoveTimeOff("rosa", "t1"))
    clinics.a.book(booking(at(WED, "11:30")))
    assert isinstance(refusal(clinics.a.remove_time_off, RemoveTimeOff("rosa", "t1")), NotFound)


def test_time_off_over_active_appointments_is_a_conflict_naming_them(clinics: Clinics) -> None:
    first = clinics.a.book(booking(at(WED, "10:00")))
    second = clinics.a.book(booking(at(THU, "16:00"), who=2))
    cancelled = clinics.a.book(booking(at(WED, "11:00"), who=3))
    clinics.a.cancel(CancelAppointment(cancelled.appointment_id))
    error = refusal(clinics.a.put_time_off, time_off(at(WED, "09:30"), at(THU, "16:30")))
    assert isinstance(error, TimeOffConflict)
    assert error.details["appointment_ids"] == [first.appointment_id, second.appointment_id]
    assert error.details["count"] == 2
    assert clinics.a.list_time_off(ListTimeOff("rosa", WED, THU))[1].items == []
    # Touching an appointment's end is not covering it.
    clinics.a.put_time_off(time_off(at(WED, "10:30"), at(THU, "16:00")))


def test_replacing_time_off_is_not_created_and_moves_the_block(clinics: Clinics) -> None:
    clinics.a.put_time_off(time_off(at(WED, "10:00"), at(WED, "12:00")))
    again = clinics.a.put_time_off(time_off(at(THU, "10:00"), at(THU, "12:00")))
    assert not again.created
    clinics.a.book(booking(at(WED, "10:00")))
    assert isinstance(refusal(clinics.a.book, booking(at(THU, "10:00"))), DoctorUnavailable)


def test_time_off_lists_the_blocks_overlapping_the_dates_by_start(clinics: Clinics) -> None:
    clinics.a.put_time_off(time_off(at(THU, "10:00"), at(THU, "11:00"), "b"))
    clinics.a.put_time_off(time_off(at(WED, "23:00"), at(THU, "01:00"), "a"))
    clinics.a.put_time_off(
        time_off(at(date(2026, 12, 10), "10:00"), at(date(2026, 12, 10), "11:00"), "c")
    )
    _, page = clinics.a.list_time_off(ListTimeOff("rosa", THU, THU, limit=1))
    assert [b.time_off_id for b in page.items] == ["a"]
    _, rest = clinics.a.list_time_off(ListTimeOff("rosa", THU, THU, 1, page.next_token))
    assert [b.time_off_id for b in rest.items] == ["b"] and rest.next_token is None
    with pytest.raises(ValidationError):
        clinics.a.list_time_off(ListTimeOff("rosa", THU, WED))


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        (at(WED, "12:00"), at(WED, "12:00"), "end"),
        (at(WED, "12:00"), at(WED, "11:00"), "end"),
        (at(WED, "00:00"), at(WED, "00:00") + timedelta(days=90, seconds=1), "end"),
        (datetime(2026, 12, 2, 10), at(WED, "12:00"), "start"),
    ],
)
def test_a_malformed_block_is_a_validation_error_and_nothing_is_stored(
    clinics: Clinics, start: datetime, end: datetime, field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        clinics.a.put_time_off(time_off(start, end))
    assert caught.value.details["field"] == field
    assert clinics.store.time_off == {}
    # Registering the doctor records no event: any event here would be the refused block's.
    assert list(clinics.store.outbox.values()) == []


def test_time_off_changes_are_events_with_the_schedule_version(clinics: Clinics) -> None:
    version = clinics.store.schedule_versions["demo", "rosa"]
    clinics.a.put_time_off(time_off(at(WED, "10:00"), at(WED, "12:00")))
    clinics.a.remove_time_off(RemoveTimeOff("rosa", "t1"))
    changes = [e for e in clinics.store.outbox.values() if e.appointment_id is None]
    assert [e.type for e in changes] == ["TimeOffAdded", "TimeOffRemoved"]
    assert [e.version for e in changes] == [version + 1, version + 2]
    assert changes[0].data["time_off_id"] == "t1" and "reason" not in changes[0].data
    # Published in order per doctor of a clinic (the events queue's MessageGroupId).
    assert {e.group_key for e in changes} == {"demo#doctor#rosa"}
    assert clinics.store.schedule_versions["demo", "rosa"] == version + 2


# One code path, whatever the container's cache holds ---------------------------------------


def test_a_container_with_a_stale_schedule_never_books_into_new_time_off(
    clinics: Clinics,
) -> None:
    clinics.a.book(booking(at(WED, "09:00")))  # container a now knows the doctor
    clinics.b.put_time_off(time_off(at(WED, "10:00"), at(WED, "12:00")))
    assert isinstance(refusal(clinics.a.book, booking(at(WED, "10:00"), who=2)), DoctorUnavailable)
    booked = clinics.a.book(booking(at(THU, "09:00"), who=3))
    moved = refusal(
        clinics.a.reschedule, RescheduleAppointment(booked.appointment_id, at(WED, "11:00"))
    )
    assert isinstance(moved, DoctorUnavailable)
    clinics.b.remove_time_off(RemoveTimeOff("rosa", "t1"))
    clinics.a.book(booking(at(WED, "10:00"), who=2))


def test_a_container_with_stale_rules_follows_the_replaced_doctor(clinics: Clinics) -> None:
    clinics.a.book(booking(at(WED, "09:00")))
    clinics.b.register_doctor(
        RegisterDoctor("rosa", "Dra. Rosa", "PE", WEEKDAY_HOURS, min_notice_minutes=10080)
    )
    assert isinstance(refusal(clinics.a.book, booking(at(WED, "10:00"), who=2)), TooSoon)


def test_the_booking_worker_rejects_a_request_inside_time_off(clinics: Clinics) -> None:
    request = clinics.a.request_booking(booking(at(WED, "10:00")))
    clinics.b.put_time_off(time_off(at(WED, "10:00"), at(WED, "12:00")))
    done = clinics.a.process_booking_request(request.request_id)
    assert done.status == "rejected"
    assert done.error is not None and done.error["code"] == "doctor_unavailable"


def test_a_configured_country_without_a_holiday_calendar_books_and_lists_none() -> None:
    clinics = Clinics()
    clinic = Clinic(
        InMemoryAppointmentRepository(clinics.store, clinic_id="demo"),
        InMemoryDoctorRepository(clinics.store, clinic_id="demo"),
        InMemoryBookingRequestRepository(clinics.store, clinic_id="demo"),
        InMemoryBookingRequestQueue(),
        clinics.clock,
        UuidV7Generator(),
        CountryCatalog.from_mapping({"PE": "America/Lima", "ZZ": "America/Lima"}),
        clinic_id="demo",
        holidays=LibraryHolidayCalendar(),
    )
    clinic.register_doctor(RegisterDoctor("zeta", "Dra. Zeta", "ZZ", WEEKDAY_HOURS))
    clinic.book(booking(at(HOLIDAY, "10:00"), doctor="zeta"))
    with pytest.raises(ValidationError) as caught:
        clinic.national_holidays("ZZ", 2026)
    assert caught.value.details["field"] == "country"
