from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.appointment import Status
from domain.commands import ChangeStatus, RegisterDoctor, RescheduleAppointment
from tests.unit.conftest import SANTIAGO, THU, WED, World, at, booking


def _reminded(world: World) -> list[str]:
    return [a.appointment_id for a in world.clinic.run_cadence()]


def test_a_reminder_is_due_once_the_24_hour_mark_passes(world: World) -> None:
    appointment = world.clinic.book(booking(at(THU, "10:00")))

    world.clock.set(at(WED, "09:59"))
    assert _reminded(world) == []
    world.clock.set(at(WED, "10:05"))
    assert _reminded(world) == [appointment.appointment_id]
    event = list(world.store.outbox.values())[-1]
    # Still unconfirmed a day before: at risk, and reminded on every channel.
    assert event.type == "AppointmentAtRisk"
    assert event.version == 1


def test_a_reminder_goes_out_only_once(world: World) -> None:
    world.clinic.book(booking(at(THU, "10:00")))
    world.clock.set(at(WED, "10:00"))
    _reminded(world)

    world.clock.set(at(WED, "10:15"))
    assert _reminded(world) == []
    assert world.event_types().count("AppointmentAtRisk") == 1


def test_a_reminder_does_not_change_the_version(world: World) -> None:
    appointment = world.clinic.book(booking(at(THU, "10:00")))
    world.clock.set(at(WED, "10:00"))
    _reminded(world)

    assert world.clinic.get(appointment.appointment_id).version == 1


def test_missed_runs_are_caught_up_within_six_hours(world: World) -> None:
    appointment = world.clinic.book(booking(at(THU, "10:00")))

    world.clock.set(at(WED, "15:30"))
    assert _reminded(world) == [appointment.appointment_id]


def test_after_six_hours_late_no_reminder_goes_out(world: World) -> None:
    appointment = world.clinic.book(booking(at(THU, "10:00")))
    world.clinic.change_status(ChangeStatus(appointment.appointment_id, Status.CONFIRMED))

    world.clock.set(at(WED, "16:01"))
    assert _reminded(world) == []


def test_an_unconfirmed_visit_is_at_risk_however_late_the_tick(world: World) -> None:
    appointment = world.clinic.book(booking(at(THU, "10:00")))

    # Staff call from the at-risk list: a tick 23 hours late still flags it.
    world.clock.set(at(THU, "09:00"))
    assert _reminded(world) == [appointment.appointment_id]
    assert world.clinic.get(appointment.appointment_id).at_risk


def test_a_cancelled_appointment_gets_no_reminder(world: World) -> None:
    appointment = world.clinic.book(booking(at(THU, "10:00")))
    world.clinic.change_status(ChangeStatus(appointment.appointment_id, Status.CANCELLED))

    world.clock.set(at(WED, "10:00"))
    assert _reminded(world) == []


def test_a_confirmed_appointment_gets_a_reminder(world: World) -> None:
    appointment = world.clinic.book(booking(at(THU, "10:00")))
    world.clinic.change_status(ChangeStatus(appointment.appointment_id, Status.CONFIRMED))

    world.clock.set(at(WED, "10:00"))
    assert _reminded(world) == [appointment.appointment_id]


def test_an_appointment_booked_inside_the_last_24_hours_gets_no_reminder(world: World) -> None:
    world.clock.set(at(WED, "11:00"))
    world.clinic.book(booking(at(THU, "10:00")))

    world.clock.set(at(WED, "11:15"))
    assert _reminded(world) == []


def test_the_reminder_follows_a_reschedule(world: World) -> None:
    appointment = world.clinic.book(booking(at(THU, "10:00")))
    world.clock.set(at(WED, "10:00"))
    assert _reminded(world) == [appointment.appointment_id]

    world.clinic.reschedule(
        RescheduleAppointment(appointment.appointment_id, at(THU + timedelta(days=1), "15:00"))
    )
    world.clock.set(at(THU, "15:00"))
    assert _reminded(world) == [appointment.appointment_id]
    assert world.event_types(appointment.appointment_id).count("AppointmentAtRisk") == 2


def test_a_rescheduled_appointment_is_not_reminded_for_its_old_time(world: World) -> None:
    appointment = world.clinic.book(booking(at(THU, "10:00")))
    world.clinic.reschedule(
        RescheduleAppointment(appointment.appointment_id, at(THU + timedelta(days=1), "10:00"))
    )

    world.clock.set(at(WED, "10:00"))
    # Due at Wednesday 10:00 is the 48-hour request of the new time, not a day-before step
    # of the old one.
    assert _reminded(world) == [appointment.appointment_id]
    event = list(world.store.outbox.values())[-1]
    assert event.type == "ConfirmationRequested"
    assert datetime.fromisoformat(event.data["start"]) == at(THU + timedelta(days=1), "10:00")


def test_the_24_hours_are_real_hours_across_santiagos_dst_change(world: World) -> None:
    hours = {d: [["08:00", "20:00"]] for d in ("sat", "sun", "mon")}
    world.clinic.register_doctor(RegisterDoctor("scl", "Dra. Vera", "CL", hours))
    world.clock.set(datetime(2026, 9, 1, tzinfo=UTC))
    # Sunday 2026-09-06 10:00 is -03; 24 real hours earlier Santiago's clocks showed 09:00.
    start = datetime(2026, 9, 6, 10, 0, tzinfo=SANTIAGO)
    appointment = world.clinic.book(booking(start, doctor="scl"))

    world.clock.set(datetime(2026, 9, 5, 8, 59, tzinfo=SANTIAGO))
    assert _reminded(world) == []
    world.clock.set(datetime(2026, 9, 5, 9, 0, tzinfo=SANTIAGO))
    assert _reminded(world) == [appointment.appointment_id]
