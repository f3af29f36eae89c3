from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.appointment import Patient, Status
from domain.commands import BookAppointment, RegisterDoctor
from domain.errors import (
    InvalidSlot,
    NotFound,
    OutsideWorkingHours,
    PatientDoubleBooked,
    SlotUnavailable,
    StartInPast,
    ValidationError,
)
from tests.unit.conftest import LIMA, THU, WED, World, at, booking, patient


def test_a_booking_inside_working_hours_is_requested_at_version_one(world: World) -> None:
    appointment = world.clinic.book(booking(at(WED, "09:30")))

    assert appointment.status is Status.REQUESTED
    assert appointment.version == 1
    assert appointment.start == at(WED, "09:30")
    assert appointment.duration_minutes == 30
    assert appointment.country == "PE"
    assert appointment.time_zone == "America/Lima"
    assert world.clinic.get(appointment.appointment_id) == appointment


def test_a_booking_records_appointment_requested_in_the_outbox(world: World) -> None:
    appointment = world.clinic.book(booking(at(WED, "09:30")))

    (event,) = world.store.outbox.values()
    assert event.type == "AppointmentRequested"
    assert event.appointment_id == appointment.appointment_id
    assert event.version == 1
    assert event.data["start"] == "2026-12-02T14:30:00+00:00"
    assert appointment.events == []


def test_the_same_instant_written_with_another_offset_is_the_same_slot(world: World) -> None:
    world.clinic.book(booking(at(WED, "09:30")))

    with pytest.raises(SlotUnavailable):
        world.clinic.book(booking(datetime(2026, 12, 2, 14, 30, tzinfo=UTC), who=2))


def test_a_duration_of_several_slots_is_allowed(world: World) -> None:
    appointment = world.clinic.book(booking(at(WED, "09:00"), minutes=90))

    assert appointment.end == at(WED, "10:30")


def test_a_start_off_the_slot_grid_is_an_invalid_slot(world: World) -> None:
    with pytest.raises(InvalidSlot) as raised:
        world.clinic.book(booking(at(WED, "09:10")))
    assert raised.value.code == "invalid_slot"


def test_a_start_with_seconds_is_an_invalid_slot(world: World) -> None:
    with pytest.raises(InvalidSlot):
        world.clinic.book(booking(at(WED, "09:30") + timedelta(seconds=1)))


def test_a_duration_that_is_not_a_multiple_of_the_slot_is_an_invalid_slot(world: World) -> None:
    with pytest.raises(InvalidSlot):
        world.clinic.book(booking(at(WED, "09:00"), minutes=45))


@pytest.mark.parametrize("minutes", [0, -30, 270, 241])
def test_a_duration_outside_one_to_240_minutes_is_a_validation_error(
    world: World, minutes: int
) -> None:
    with pytest.raises(ValidationError):
        world.clinic.book(booking(at(WED, "09:00"), minutes=minutes))


def test_240_minutes_is_the_longest_booking(world: World) -> None:
    world.clinic.register_doctor(
        RegisterDoctor("long", "Dra. Larga", "PE", {"wed": [["07:00", "20:00"]]})
    )
    appointment = world.clinic.book(booking(at(WED, "08:00"), doctor="long", minutes=240))
    assert appointment.duration_minutes == 240


@pytest.mark.parametrize("hhmm", ["08:30", "13:00", "18:00", "20:00"])
def test_a_start_outside_working_hours_is_rejected(world: World, hhmm: str) -> None:
    with pytest.raises(OutsideWorkingHours) as raised:
        world.clinic.book(booking(at(WED, hhmm)))
    assert raised.value.code == "outside_working_hours"


def test_a_booking_running_past_the_end_of_a_shift_is_outside_working_hours(world: World) -> None:
    with pytest.raises(OutsideWorkingHours):
        world.clinic.book(booking(at(WED, "12:30"), minutes=60))


def test_a_booking_on_a_day_off_is_outside_working_hours(world: World) -> None:
    saturday = WED + timedelta(days=3)
    with pytest.raises(OutsideWorkingHours):
        world.clinic.book(booking(at(saturday, "10:00")))


def test_a_start_in_the_past_is_rejected(world: World) -> None:
    world.clock.set(at(WED, "10:00"))
    with pytest.raises(StartInPast) as raised:
        world.clinic.book(booking(at(WED, "09:30")))
    assert raised.value.code == "start_in_past"


def test_a_start_exactly_now_is_in_the_past(world: World) -> None:
    world.clock.set(at(WED, "09:30"))
    with pytest.raises(StartInPast):
        world.clinic.book(booking(at(WED, "09:30")))


def test_a_naive_start_is_a_validation_error(world: World) -> None:
    with pytest.raises(ValidationError) as raised:
        world.clinic.book(booking(datetime(2026, 12, 2, 9, 30)))
    assert raised.value.details["field"] == "start"


def test_booking_with_an_unknown_doctor_is_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        world.clinic.book(booking(at(WED, "09:30"), doctor="nobody"))


def test_a_doctor_cannot_be_booked_twice_for_the_same_slot(world: World) -> None:
    world.clinic.book(booking(at(WED, "09:30"), who=1))

    with pytest.raises(SlotUnavailable) as raised:
        world.clinic.book(booking(at(WED, "09:30"), who=2))
    assert raised.value.code == "slot_unavailable"


def test_a_longer_booking_overlapping_a_later_one_is_rejected(world: World) -> None:
    world.clinic.book(booking(at(WED, "10:00"), who=1))

    with pytest.raises(SlotUnavailable):
        world.clinic.book(booking(at(WED, "09:00"), who=2, minutes=90))


def test_back_to_back_bookings_do_not_overlap(world: World) -> None:
    world.clinic.book(booking(at(WED, "09:00"), who=1))
    world.clinic.book(booking(at(WED, "09:30"), who=2))

    assert len(world.store.appointments) == 2


def test_a_patient_cannot_hold_two_overlapping_appointments_with_different_doctors(
    world: World,
) -> None:
    world.clinic.book(booking(at(WED, "09:00"), who=7, doctor="rosa", minutes=60))
    # Matías works in Santiago; 11:20 there is 09:20 in Lima, inside Rosa's hour.
    santiago_time = at(WED, "09:20").astimezone(world.clinic.doctor("matias").zone)

    with pytest.raises(PatientDoubleBooked) as raised:
        world.clinic.book(booking(santiago_time, who=7, doctor="matias"))
    assert raised.value.code == "patient_double_booked"


def test_a_patient_is_identified_by_phone_not_by_name(world: World) -> None:
    world.clinic.book(BookAppointment("rosa", Patient("Ana", "+51911111111"), at(WED, "09:00")))
    other_slot_same_time = at(WED, "09:00").astimezone(world.clinic.doctor("matias").zone)

    with pytest.raises(PatientDoubleBooked):
        world.clinic.book(
            BookAppointment("matias", Patient("Ana María", "+51911111111"), other_slot_same_time)
        )


def test_a_failed_booking_writes_nothing(world: World) -> None:
    world.clinic.book(booking(at(WED, "09:00"), who=1))
    cells_before = dict(world.store.cells)
    outbox_before = list(world.store.outbox)

    with pytest.raises(SlotUnavailable):
        world.clinic.book(booking(at(WED, "08:30") + timedelta(minutes=30), who=2, minutes=60))

    assert world.store.cells == cells_before
    assert list(world.store.outbox) == outbox_before
    assert len(world.store.appointments) == 1


def test_ids_are_time_ordered(world: World) -> None:
    first = world.clinic.book(booking(at(WED, "09:00"), who=1))
    second = world.clinic.book(booking(at(THU, "09:00"), who=2))

    assert first.appointment_id < second.appointment_id
    assert first.appointment_id[14] == "7"


@pytest.mark.parametrize(
    ("name", "phone", "document_id"),
    [
        ("", "+51987654321", None),
        ("Ana", "987654321", None),
        ("Ana", "+0987654321", None),
        ("Ana", "+51 987 654 321", None),
        ("Ana", "+51987654321", "12.345.678-9"),
        ("x" * 201, "+51987654321", None),
    ],
)
def test_an_invalid_patient_is_a_validation_error(
    name: str, phone: str, document_id: str | None
) -> None:
    with pytest.raises(ValidationError):
        Patient(name, phone, document_id)


def test_notes_longer_than_500_characters_are_a_validation_error(world: World) -> None:
    with pytest.raises(ValidationError):
        world.clinic.book(BookAppointment("rosa", patient(), at(WED, "09:00"), notes="x" * 501))


def test_the_patient_key_never_contains_the_phone() -> None:
    key = patient(3).key
    assert "98765" not in key
    assert len(key) == 32


def test_a_default_booking_lasts_one_slot_of_the_doctor(world: World) -> None:
    santiago = at(WED, "09:00").astimezone(world.clinic.doctor("matias").zone)
    appointment = world.clinic.book(booking(santiago, doctor="matias"))
    assert appointment.duration_minutes == 20
    assert appointment.start.astimezone(LIMA) == at(WED, "09:00")
