"""The confirmation cadence: its rules one by one, then as a state machine over a fake clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.clinics import StaticClinicDirectory
from adapters.links import random_link_keys
from adapters.memory.patients import InMemorySentMessages
from adapters.memory.store import InMemoryNotifier, InMemoryProcessedEvents, InMemoryRepositories
from domain.appointment import Status
from domain.cadence import Step, due_step, in_quiet_hours, quiet_end_after, send_time
from domain.clinics import DEMO_CLINIC
from domain.commands import (
    BookAppointment,
    CancelAppointment,
    ChangeStatus,
    RegisterDoctor,
    RescheduleAppointment,
)
from domain.patient import Patient
from domain.use_cases import PatientMessenger
from domain.use_cases.links import Links
from ports.messaging import OutboundMessage
from tests.unit.conftest import World

LIMA = "America/Lima"
SANTIAGO = "America/Santiago"
START = datetime(2026, 12, 10, 15, 0, tzinfo=UTC)  # Thursday 10:00 in Lima
TICK = timedelta(minutes=15)


def step(status: str = "requested", *, now: datetime, booked: datetime | None = None, sent=()):  # type: ignore[no-untyped-def]
    return due_step(
        status=status,
        start=START,
        scheduled_at=booked if booked is not None else START - timedelta(days=5),
        sent=sent,
        now=now,
    )


def test_an_unconfirmed_visit_is_asked_again_at_48_hours_then_at_risk_at_24() -> None:
    assert step(now=START - timedelta(hours=48, minutes=1)) is None
    asked = step(now=START - timedelta(hours=48))
    assert asked is not None and asked.step is Step.ASK_48H
    at_risk = step(now=START - timedelta(hours=24), sent=[Step.ASK_48H])
    assert at_risk is not None and at_risk.step is Step.AT_RISK_24H
    assert step(now=START - timedelta(hours=23), sent=[Step.ASK_48H, Step.AT_RISK_24H]) is None
    # Unconfirmed, there is no 2-hour reminder: staff were told at 24 hours.
    assert step(now=START - timedelta(hours=1), sent=[Step.ASK_48H, Step.AT_RISK_24H]) is None


def test_a_confirmed_visit_is_reminded_at_24_and_2_hours() -> None:
    first = step("confirmed", now=START - timedelta(hours=24))
    assert first is not None and first.step is Step.REMIND_24H
    second = step("confirmed", now=START - timedelta(hours=2), sent=[Step.REMIND_24H])
    assert second is not None and second.step is Step.REMIND_2H
    assert step("confirmed", now=START, sent=[]) is None  # never at or after the start


def test_a_visit_booked_after_a_mark_gets_no_step_for_that_mark() -> None:
    booked = START - timedelta(hours=30)  # after the 48-hour mark
    assert step(now=START - timedelta(hours=29), booked=booked) is None
    at_risk = step(now=START - timedelta(hours=24), booked=booked)
    assert at_risk is not None and at_risk.step is Step.AT_RISK_24H


def test_a_late_tick_sends_the_latest_step_only_and_none_past_the_grace() -> None:
    late = step(now=START - timedelta(hours=23))  # the 48-hour ask was never sent
    assert late is not None and late.step is Step.AT_RISK_24H
    # 6 hours late, a reminder is dropped rather than sent late...
    reminder = step("confirmed", now=START - timedelta(hours=17, minutes=59))
    assert reminder is None
    ask = step(now=START - timedelta(hours=41, minutes=59))
    assert ask is None
    # ...but staff rely on the at-risk flag: it is set until the visit starts.
    at_risk = step(now=START - timedelta(minutes=1))
    assert at_risk is not None and at_risk.step is Step.AT_RISK_24H


def test_an_untouched_visit_gets_each_step_of_its_status_at_its_mark(world: World) -> None:
    hours = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    world.clinic.register_doctor(
        RegisterDoctor("doc", "Dra. Marca", "PE", hours, min_notice_minutes=0, slot_minutes=15)
    )
    # Booked on Tuesday 08:00 Lima for Friday 12:00, 76 hours ahead, then confirmed late.
    start = datetime(2026, 12, 4, 12, 0, tzinfo=ZoneInfo(LIMA))
    booked = world.clinic.book(BookAppointment("doc", Patient("P", "+51987650002"), start, None))
    recorded: list[datetime] = []
    while world.clock.now() < start:
        recorded.extend(world.clock.now() for _ in world.clinic.run_cadence())
        if world.clock.now() == start - timedelta(hours=10):
            world.clinic.change_status(ChangeStatus(booked.appointment_id, Status.CONFIRMED))
        world.clock.set(world.clock.now() + TICK)
    types = [
        (e.type, e.data.get("step"))
        for e in world.store.outbox.values()
        if e.appointment_id == booked.appointment_id and "step" in e.data
    ]
    assert types == [
        ("ConfirmationRequested", "ask_48h"),
        ("AppointmentAtRisk", "at_risk_24h"),
        ("ReminderDue", "remind_2h"),
    ]
    assert recorded == [
        start - timedelta(hours=48),
        start - timedelta(hours=24),
        start - timedelta(hours=2),
    ]


def test_quiet_hours_hold_a_step_until_8_unless_the_visit_is_sooner() -> None:
    zone = ZoneInfo(LIMA)
    night = datetime(2026, 12, 9, 22, 0, tzinfo=zone)
    assert in_quiet_hours(night, LIMA)
    morning = datetime(2026, 12, 10, 8, 0, tzinfo=zone)
    assert quiet_end_after(night, LIMA) == morning
    assert send_time(night, datetime(2026, 12, 10, 9, 0, tzinfo=zone), LIMA) == morning
    assert send_time(night, datetime(2026, 12, 10, 7, 0, tzinfo=zone), LIMA) == night
    assert not in_quiet_hours(datetime(2026, 12, 10, 20, 59, tzinfo=zone), LIMA)
    assert in_quiet_hours(datetime(2026, 12, 10, 21, 0, tzinfo=zone), LIMA)
    assert in_quiet_hours(datetime(2026, 12, 10, 7, 59, tzinfo=zone), LIMA)


def test_quiet_hours_follow_santiagos_clock_across_the_dst_change() -> None:
    zone = ZoneInfo(SANTIAGO)
    # Sunday 2026-09-06: clocks jump from 00:00 to 01:00; 08:00 is then 11:00 UTC, not 12:00.
    night = datetime(2026, 9, 5, 23, 0, tzinfo=zone)
    assert quiet_end_after(night, SANTIAGO) == datetime(2026, 9, 6, 11, 0, tzinfo=UTC)
    # Sunday 2026-04-05: clocks go back from 00:00 to 23:00; 08:00 is 12:00 UTC.
    night = datetime(2026, 4, 4, 23, 30, tzinfo=zone)
    assert quiet_end_after(night, SANTIAGO) == datetime(2026, 4, 5, 12, 0, tzinfo=UTC)


# --- the cadence as a state machine over a fake clock ----------------------------------------


class TimedNotifier(InMemoryNotifier):
    """Keeps when each message went out, and when its visit then began."""

    def __init__(self, world: World) -> None:
        super().__init__()
        self.world = world
        self.times: list[datetime] = []
        self.starts: list[datetime] = []

    def send(self, message: OutboundMessage) -> str | None:
        """Record the message, the clock's time and the visit's start at that time."""
        self.times.append(self.world.clock.now())
        assert message.appointment_id is not None
        self.starts.append(self.world.clinic.get(message.appointment_id).start)
        return super().send(message)


ACTIONS = st.sampled_from(["confirm", "cancel", "reschedule", "nothing"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    zone=st.sampled_from([LIMA, SANTIAGO]),
    booked_at=st.integers(min_value=0, max_value=95),  # quarter hours after 2026-09-03 00:00
    lead=st.integers(min_value=1, max_value=60 * 4),  # quarter hours from booking to the visit
    actions=st.lists(st.tuples(st.integers(min_value=1, max_value=60 * 4), ACTIONS), max_size=3),
)
def test_each_message_once_never_in_quiet_hours_unless_sooner_never_after_cancel(
    zone: str, booked_at: int, lead: int, actions: list[tuple[int, str]]
) -> None:
    world = World()
    # Around Santiago's DST change (2026-09-06): days of 23 hours included.
    now = datetime(2026, 9, 3, tzinfo=ZoneInfo(zone)).astimezone(UTC) + booked_at * TICK
    world.clock.set(now)
    country = "PE" if zone == LIMA else "CL"
    hours = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    clinic = world.clinic
    clinic.register_doctor(
        RegisterDoctor(
            "doc",
            "Dra. Cadencia",
            country,
            hours,
            slot_minutes=15,
            min_notice_minutes=0,
            works_on_holidays=True,
        )
    )
    notifier = TimedNotifier(world)
    messenger = PatientMessenger(
        StaticClinicDirectory([(DEMO_CLINIC, "k")]),
        InMemoryRepositories(world.store),
        notifier,
        InMemoryProcessedEvents(world.store),
        InMemorySentMessages(world.store),
        Links(random_link_keys(), "https://citas.example"),
        world.clock,
    )
    start = now + lead * TICK
    appointment = clinic.book(
        BookAppointment("doc", Patient("Paciente", "+51987650000"), start, None)
    )
    plan = dict(actions)
    cancelled_at: datetime | None = None
    handled: set[str] = set()
    tick = 0
    while world.clock.now() < start + timedelta(hours=1):
        current = clinic.get(appointment.appointment_id)
        act = plan.get(tick)
        if act is not None and current.is_active and world.clock.now() < current.start:
            if act == "confirm" and current.status is Status.REQUESTED:
                clinic.change_status(ChangeStatus(appointment.appointment_id, Status.CONFIRMED))
            elif act == "cancel":
                clinic.cancel(CancelAppointment(appointment.appointment_id))
                cancelled_at = world.clock.now()
            elif act == "reschedule":
                start = current.start + 8 * TICK
                clinic.reschedule(RescheduleAppointment(appointment.appointment_id, start))
        clinic.run_cadence()
        messenger.send_held("demo")
        for event in list(world.store.outbox.values()):
            if event.event_id not in handled:
                handled.add(event.event_id)
                messenger.handle(event)
        world.clock.set(world.clock.now() + TICK)
        tick += 1

    events = [e for e in world.store.outbox.values() if e.appointment_id]
    steps = [(e.data["start"], e.data["step"]) for e in events if "step" in e.data]
    assert len(steps) == len(set(steps)), steps  # each step once per start time
    assert notifier.messages or cancelled_at is not None
    sends = zip(notifier.messages, notifier.times, notifier.starts, strict=True)
    for message, sent_at, visit_start in sends:
        if in_quiet_hours(sent_at, zone):
            # Only a message whose visit begins before 08:00 goes out at night.
            assert visit_start <= quiet_end_after(sent_at, zone), (message.text, sent_at)
        if cancelled_at is not None and sent_at > cancelled_at:
            assert "cancelada" in message.text, (message.text, sent_at, cancelled_at)
    texts = [m.text for m in notifier.messages]
    assert len(texts) == len(set(texts)), texts  # nothing twice


@pytest.mark.parametrize("zone", [LIMA, SANTIAGO])
def test_a_night_booking_is_told_at_8_in_the_doctors_time(world: World, zone: str) -> None:
    country = "PE" if zone == LIMA else "CL"
    hours = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    world.clinic.register_doctor(
        RegisterDoctor("doc", "Dra. Noche", country, hours, min_notice_minutes=0, slot_minutes=15)
    )
    night = datetime(2026, 12, 2, 23, 0, tzinfo=ZoneInfo(zone))
    world.clock.set(night.astimezone(UTC))
    world.clinic.book(
        BookAppointment("doc", Patient("P", "+51987650001"), night + timedelta(days=2), None)
    )
    notifier = TimedNotifier(world)
    messenger = PatientMessenger(
        StaticClinicDirectory([(DEMO_CLINIC, "k")]),
        InMemoryRepositories(world.store),
        notifier,
        InMemoryProcessedEvents(world.store),
        InMemorySentMessages(world.store),
        Links(random_link_keys(), None),
        world.clock,
    )
    for event in list(world.store.outbox.values()):
        assert not messenger.handle(event)
    world.clock.set(datetime(2026, 12, 3, 8, 0, tzinfo=ZoneInfo(zone)).astimezone(UTC))
    assert messenger.send_held("demo") == 1
    assert notifier.times == [datetime(2026, 12, 3, 8, 0, tzinfo=ZoneInfo(zone))]
