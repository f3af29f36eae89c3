from __future__ import annotations

import pytest

from domain.appointment import Status
from domain.commands import ChangeStatus, RescheduleAppointment
from domain.errors import (
    InvalidSlot,
    InvalidTransition,
    OutsideWorkingHours,
    PatientDoubleBooked,
    SlotUnavailable,
    StartInPast,
    VersionConflict,
)
from domain.schedule import cells
from tests.unit.conftest import THU, WED, World, at, booking


def test_rescheduling_moves_the_time_and_goes_back_to_requested(world: World) -> None:
    appointment = world.clinic.book(booking(at(WED, "09:30")))
    world.clinic.change_status(ChangeStatus(appointment.appointment_id, Status.CONFIRMED))

    moved = world.clinic.reschedule(
        RescheduleAppointment(appointment.appointment_id, at(THU, "15:00"))
    )

    assert moved.start == at(THU, "15:00")
    assert moved.duration_minutes == 30
    assert moved.status is Status.REQUESTED
    assert moved.version == 3
    event = list(world.store.outbox.values())[-1]
    assert event.type == "AppointmentRescheduled"
    assert event.data["previous_start"] == "2026-12-02T14:30:00+00:00"
    assert event.data["previous_status"] == "confirmed"


def test_rescheduling_frees_the_old_time_and_holds_only_the_new(world: World) -> None:
    appointment = world.clinic.book(booking(at(WED, "09:30")))

    world.clinic.reschedule(RescheduleAppointment(appointment.appointment_id, at(THU, "15:00")))

    held = {cell for (_, _, _, cell) in world.store.cells}
    assert held == set(cells(at(THU, "15:00"), at(THU, "15:30")))
    world.clinic.book(booking(at(WED, "09:30"), who=2))


def test_rescheduling_can_change_the_length(world: World) -> None:
    appointment = world.clinic.book(booking(at(WED, "09:30")))

    moved = world.clinic.reschedule(
        RescheduleAppointment(appointment.appointment_id, at(WED, "09:30"), duration_minutes=90)
    )

    assert moved.end == at(WED, "11:00")


def test_rescheduling_into_its_own_overlapping_time_is_allowed(world: World) -> None:
    appointment = world.clinic.book(booking(at(WED, "09:00"), minutes=60))

    moved = world.clinic.reschedule(
        RescheduleAppointment(appointment.appointment_id, at(WED, "09:30"))
    )

    assert moved.start == at(WED, "09:30")
    world.clinic.book(booking(at(WED, "09:00"), who=2))


def test_rescheduling_onto_a_taken_slot_changes_nothing(world: World) -> None:
    mine = world.clinic.book(booking(at(WED, "09:30"), who=1))
    world.clinic.book(booking(at(THU, "15:00"), who=2))
    cells_before = dict(world.store.cells)

    with pytest.raises(SlotUnavailable):
        world.clinic.reschedule(RescheduleAppointment(mine.appointment_id, at(THU, "15:00")))

    assert world.store.cells == cells_before
    assert world.clinic.get(mine.appointment_id) == mine


def test_rescheduling_onto_the_patients_other_appointment_is_a_double_booking(
    world: World,
) -> None:
    mine = world.clinic.book(booking(at(WED, "09:30"), who=1))
    santiago = at(THU, "15:00").astimezone(world.clinic.doctor("matias").zone)
    world.clinic.book(booking(santiago, who=1, doctor="matias"))

    with pytest.raises(PatientDoubleBooked):
        world.clinic.reschedule(RescheduleAppointment(mine.appointment_id, at(THU, "15:00")))


def test_rescheduling_into_the_past_is_rejected(world: World) -> None:
    appointment = world.clinic.book(booking(at(THU, "09:30")))
    world.clock.set(at(WED, "12:00"))

    with pytest.raises(StartInPast):
        world.clinic.reschedule(RescheduleAppointment(appointment.appointment_id, at(WED, "11:00")))


def test_rescheduling_checks_working_hours_and_slots(world: World) -> None:
    appointment = world.clinic.book(booking(at(WED, "09:30")))

    with pytest.raises(OutsideWorkingHours):
        world.clinic.reschedule(RescheduleAppointment(appointment.appointment_id, at(WED, "13:30")))
    with pytest.raises(InvalidSlot):
        world.clinic.reschedule(RescheduleAppointment(appointment.appointment_id, at(WED, "09:45")))


def test_a_cancelled_appointment_cannot_be_rescheduled(world: World) -> None:
    appointment = world.clinic.book(booking(at(WED, "09:30")))
    world.clinic.change_status(ChangeStatus(appointment.appointment_id, Status.CANCELLED))

    with pytest.raises(InvalidTransition):
        world.clinic.reschedule(RescheduleAppointment(appointment.appointment_id, at(THU, "09:30")))


def test_rescheduling_with_a_stale_version_is_a_conflict(world: World) -> None:
    appointment = world.clinic.book(booking(at(WED, "09:30")))
    world.clinic.change_status(ChangeStatus(appointment.appointment_id, Status.CONFIRMED))

    with pytest.raises(VersionConflict):
        world.clinic.reschedule(
            RescheduleAppointment(appointment.appointment_id, at(THU, "09:30"), expected_version=1)
        )
    assert world.clinic.get(appointment.appointment_id).start == at(WED, "09:30")
