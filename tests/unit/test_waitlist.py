"""The waitlist on the memory backend: who is offered freed time, for how long, and after."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from adapters.memory.doctors import InMemoryDoctorRepository
from adapters.memory.store import (
    InMemoryAppointmentRepository,
    InMemoryBookingRequestQueue,
    InMemoryBookingRequestRepository,
    MemoryStore,
)
from adapters.memory.waitlist import InMemoryWaitlistRepository
from adapters.system import FixedClock, UuidV7Generator
from domain import events as ev
from domain.appointment import Appointment, Status
from domain.commands import (
    BookAppointment,
    CancelAppointment,
    JoinWaitlist,
    ListWaitlist,
    PutTimeOff,
    RegisterDoctor,
    RemoveTimeOff,
    RescheduleAppointment,
)
from domain.countries import CountryCatalog
from domain.errors import (
    CitasError,
    InvalidSlot,
    InvalidTransition,
    NotFound,
    OfferExpired,
    SlotUnavailable,
    StartInPast,
    TimeOffConflict,
    TooFar,
    ValidationError,
    VersionConflict,
)
from domain.use_cases import Clinic
from domain.waitlist import WaitlistEntry, WaitStatus
from tests.unit.conftest import LIMA, NOW, THU, WED, WEEKDAY_HOURS, at, patient

HOLD = 30


class Waitlisted:
    """A clinic with a waitlist on the memory backend and a clock the test moves."""

    def __init__(self, *, notice: int = 0, buffer: int = 0) -> None:
        self.store = MemoryStore()
        self.clock = FixedClock(NOW.astimezone(UTC))
        self.clinic = Clinic(
            InMemoryAppointmentRepository(self.store, clinic_id="demo"),
            InMemoryDoctorRepository(self.store, clinic_id="demo"),
            InMemoryBookingRequestRepository(self.store, clinic_id="demo"),
            InMemoryBookingRequestQueue(),
            self.clock,
            UuidV7Generator(),
            CountryCatalog(),
            clinic_id="demo",
            waitlist=InMemoryWaitlistRepository(self.store, clinic_id="demo"),
            hold_minutes=HOLD,
        )
        self.clinic.register_doctor(
            RegisterDoctor(
                "rosa",
                "Dra. Rosa Quispe",
                "PE",
                WEEKDAY_HOURS,
                slot_minutes=30,
                min_notice_minutes=notice,
                booking_horizon_days=90,
                buffer_minutes=buffer,
            )
        )

    def book(self, start: datetime, who: int = 1, minutes: int | None = None) -> Appointment:
        return self.clinic.book(BookAppointment("rosa", patient(who), start, minutes))

    def join(self, who: int, first: date = WED, last: date = WED, **extra: object) -> WaitlistEntry:
        return self.clinic.join_waitlist(JoinWaitlist("rosa", patient(who), first, last, **extra))  # type: ignore[arg-type]

    def cancel_and_refill(self, appointment: Appointment) -> list[WaitlistEntry]:
        self.clinic.cancel(CancelAppointment(appointment.appointment_id))
        return self.clinic.refill_after(self.last(ev.AppointmentCancelled))

    def last(self, kind: type[ev.Event]) -> ev.Event:
        return [e for e in self.store.outbox.values() if isinstance(e, kind)][-1]

    def entry(self, entry: WaitlistEntry) -> WaitlistEntry:
        return self.clinic.waitlist_entry(entry.waitlist_id)

    def free(self, day: date) -> list[datetime]:
        return [s.start for s in self.clinic.availability("rosa", day).slots]


@pytest.fixture
def w() -> Waitlisted:
    return Waitlisted()


# --- joining ----------------------------------------------------------------------------------


def test_an_entry_waits_with_the_doctors_slot_as_its_default_length(w: Waitlisted) -> None:
    entry = w.join(1, WED, THU, earliest=time(9, 0), latest=time(12, 0))
    assert (entry.status, entry.duration_minutes, entry.version) == (WaitStatus.WAITING, 30, 1)
    assert w.entry(entry).snapshot() == entry.snapshot()


@pytest.mark.parametrize(
    ("first", "last", "extra", "error"),
    [
        (date(2026, 11, 30), WED, {}, StartInPast),
        (WED, date(2027, 2, 1), {}, ValidationError),
        (THU, WED, {}, ValidationError),
        (WED, WED, {"earliest": time(12, 0), "latest": time(9, 0)}, ValidationError),
        (WED, WED, {"earliest": time(9, 0), "latest": time(9, 0)}, ValidationError),
        (
            WED,
            WED,
            {"earliest": time(9, 0), "latest": time(9, 30), "duration_minutes": 60},
            ValidationError,
        ),
        (WED, WED, {"duration_minutes": 45}, InvalidSlot),
        (WED, WED, {"duration_minutes": 300}, ValidationError),
        (date(2027, 3, 15), date(2027, 3, 16), {}, TooFar),
    ],
)
def test_bad_entries_are_refused_and_nothing_is_stored(
    w: Waitlisted, first: date, last: date, extra: dict[str, object], error: type[CitasError]
) -> None:
    with pytest.raises(error):
        w.join(1, first, last, **extra)
    assert w.store.waitlist == {}


def test_a_doctor_of_no_clinic_here_is_not_found(w: Waitlisted) -> None:
    with pytest.raises(NotFound):
        w.clinic.join_waitlist(JoinWaitlist("nadie", patient(1), WED, WED))
    assert w.store.waitlist == {}


def test_the_list_is_oldest_first_and_pages(w: Waitlisted) -> None:
    entries = []
    for who in range(1, 6):
        entries.append(w.join(who))
        w.clock.advance(timedelta(seconds=1))
    seen, token = [], None
    while True:
        _, page = w.clinic.list_waitlist(ListWaitlist("rosa", 2, token))
        seen += [e.waitlist_id for e in page.items]
        token = page.next_token
        if token is None:
            break
    assert seen == [e.waitlist_id for e in entries]


def test_a_waiting_entry_whose_range_passed_shows_expired(w: Waitlisted) -> None:
    entry = w.join(1)
    w.clock.set(datetime.combine(THU, time(0, 0), tzinfo=LIMA))
    assert w.entry(entry).shown_status(w.clock.now()) is WaitStatus.EXPIRED


# --- offers -----------------------------------------------------------------------------------


def test_freed_time_goes_to_the_oldest_fitting_entry_and_is_held(w: Waitlisted) -> None:
    booked = w.book(at(WED, "10:00"))
    afternoon = w.join(2, earliest=time(14, 0))
    oldest = w.join(3)
    younger = w.join(4)
    offered = w.cancel_and_refill(booked)
    # The afternoon entry does not fit 10:00; the oldest that does gets it, and only one
    # entry gets a 30-minute slot.
    assert [e.waitlist_id for e in offered] == [oldest.waitlist_id]
    offer = w.entry(oldest).offer
    assert offer is not None
    assert (offer.start, offer.end) == (at(WED, "10:00"), at(WED, "10:30"))
    assert offer.expires_at == w.clock.now() + timedelta(minutes=HOLD)
    assert w.entry(younger).status is WaitStatus.WAITING
    assert w.entry(afternoon).status is WaitStatus.WAITING
    assert at(WED, "10:00") not in w.free(WED)
    with pytest.raises(SlotUnavailable):
        w.book(at(WED, "10:00"), who=9)
    made = w.last(ev.WaitlistOfferMade)
    assert made.data["waitlist_id"] == oldest.waitlist_id
    assert made.appointment_id is None


def test_an_hour_freed_is_shared_by_two_entries(w: Waitlisted) -> None:
    booked = w.book(at(WED, "10:00"), minutes=60)
    first, second = w.join(2), w.join(3)
    offered = w.cancel_and_refill(booked)
    starts = {e.waitlist_id: e.offer.start for e in offered if e.offer is not None}
    assert starts == {first.waitlist_id: at(WED, "10:00"), second.waitlist_id: at(WED, "10:30")}


def test_a_longer_visit_may_use_free_time_next_to_the_freed_slot(w: Waitlisted) -> None:
    booked = w.book(at(WED, "10:00"))
    w.book(at(WED, "09:30"), who=5)
    entry = w.join(2, duration_minutes=60)
    [offered] = w.cancel_and_refill(booked)
    assert offered.waitlist_id == entry.waitlist_id
    assert offered.offer is not None
    assert (offered.offer.start, offered.offer.end) == (at(WED, "10:00"), at(WED, "11:00"))


def test_a_patient_busy_then_is_skipped(w: Waitlisted) -> None:
    booked = w.book(at(WED, "10:00"))
    busy = w.join(2)
    other = w.join(3)
    w.clinic.book(BookAppointment("rosa", patient(2), at(WED, "15:00")))
    # Patient 2 sees another doctor at 10:00 in the same clinic.
    w.clinic.register_doctor(
        RegisterDoctor("luis", "Dr. Luis", "PE", WEEKDAY_HOURS, min_notice_minutes=0)
    )
    w.clinic.book(BookAppointment("luis", patient(2), at(WED, "10:00")))
    offered = w.cancel_and_refill(booked)
    assert [e.waitlist_id for e in offered] == [other.waitlist_id]
    assert w.entry(busy).status is WaitStatus.WAITING


def test_the_hold_never_outlasts_the_doctors_notice() -> None:
    w = Waitlisted(notice=60)
    w.clock.set(at(WED, "09:00").astimezone(UTC))
    booked = w.book(at(WED, "10:30"))
    entry = w.join(2)
    w.cancel_and_refill(booked)
    offer = w.entry(entry).offer
    assert offer is not None and offer.expires_at == at(WED, "09:30")


def test_an_offer_made_at_night_holds_from_eight_in_the_morning(w: Waitlisted) -> None:
    booked = w.book(at(THU, "11:00"))
    entry = w.join(2, WED, THU)
    w.clock.set(at(WED, "22:00").astimezone(UTC))
    w.cancel_and_refill(booked)
    offer = w.entry(entry).offer
    assert offer is not None and offer.expires_at == at(THU, "08:30")


def test_accepting_books_a_confirmed_appointment_over_the_held_cells(w: Waitlisted) -> None:
    booked = w.book(at(WED, "10:00"))
    entry = w.join(2)
    w.cancel_and_refill(booked)
    offer = w.entry(entry).offer
    assert offer is not None
    taken, appointment = w.clinic.accept_offer(entry.waitlist_id)
    assert appointment.appointment_id == offer.appointment_id
    assert (appointment.status, appointment.version) == (Status.CONFIRMED, 2)
    assert appointment.patient == patient(2)
    assert (taken.status, taken.appointment_id, taken.offer) == (
        WaitStatus.BOOKED,
        appointment.appointment_id,
        None,
    )
    types = [e.type for e in w.store.outbox.values()][-3:]
    assert types == ["AppointmentRequested", "AppointmentConfirmed", "WaitlistOfferAccepted"]
    # Accepting again is harmless: the same appointment.
    again = w.clinic.accept_offer(entry.waitlist_id)[1]
    assert again.snapshot() == appointment.snapshot()
    assert len(w.store.appointments) == 2


def test_accepting_after_the_hold_ran_out_books_nothing(w: Waitlisted) -> None:
    booked = w.book(at(WED, "10:00"))
    entry = w.join(2)
    w.cancel_and_refill(booked)
    w.clock.advance(timedelta(minutes=HOLD))
    with pytest.raises(OfferExpired):
        w.clinic.accept_offer(entry.waitlist_id)
    assert len(w.store.appointments) == 1
    assert w.entry(entry).status is WaitStatus.OFFERED


def test_an_expired_offer_is_swept_and_goes_to_the_next_entry(w: Waitlisted) -> None:
    booked = w.book(at(WED, "10:00"))
    first, second = w.join(2), w.join(3)
    w.cancel_and_refill(booked)
    w.clock.advance(timedelta(minutes=HOLD - 1))
    assert w.clinic.sweep_offers() == []  # still held
    w.clock.advance(timedelta(minutes=1))
    [swept] = w.clinic.sweep_offers()
    assert swept.waitlist_id == first.waitlist_id
    expired = w.last(ev.WaitlistOfferExpired)
    assert expired.data["reason"] == "expired"
    [offered] = w.clinic.refill_after(expired)
    assert offered.waitlist_id == second.waitlist_id
    # The first entry waits again, but is never offered that start twice.
    again = w.entry(first)
    assert again.status is WaitStatus.WAITING and at(WED, "10:00") in again.passed
    with pytest.raises(OfferExpired):
        w.clinic.accept_offer(first.waitlist_id)


def test_a_declined_offer_frees_the_slot(w: Waitlisted) -> None:
    booked = w.book(at(WED, "10:00"))
    entry = w.join(2)
    w.cancel_and_refill(booked)
    declined = w.clinic.decline_offer(entry.waitlist_id)
    assert declined.status is WaitStatus.WAITING and declined.offer is None
    assert w.clinic.decline_offer(entry.waitlist_id).version == declined.version
    assert w.last(ev.WaitlistOfferExpired).data["reason"] == "declined"
    assert at(WED, "10:00") in w.free(WED)
    assert w.book(at(WED, "10:00"), who=9).status is Status.REQUESTED


def test_withdrawing_frees_a_held_slot_and_is_repeatable(w: Waitlisted) -> None:
    booked = w.book(at(WED, "10:00"))
    entry = w.join(2)
    w.cancel_and_refill(booked)
    gone = w.clinic.withdraw_from_waitlist(entry.waitlist_id)
    assert gone.status is WaitStatus.WITHDRAWN and gone.offer is None
    assert w.clinic.withdraw_from_waitlist(entry.waitlist_id).version == gone.version
    assert at(WED, "10:00") in w.free(WED)
    with pytest.raises(InvalidTransition):
        w.clinic.accept_offer(entry.waitlist_id)


def test_a_booked_entry_cannot_be_withdrawn(w: Waitlisted) -> None:
    booked = w.book(at(WED, "10:00"))
    entry = w.join(2)
    w.cancel_and_refill(booked)
    w.clinic.accept_offer(entry.waitlist_id)
    with pytest.raises(InvalidTransition):
        w.clinic.withdraw_from_waitlist(entry.waitlist_id)


def test_a_reschedule_away_and_time_off_removed_free_time_too(w: Waitlisted) -> None:
    booked = w.book(at(WED, "10:00"))
    entry = w.join(2, earliest=time(9, 0), latest=time(12, 0))
    w.clinic.reschedule(RescheduleAppointment(booked.appointment_id, at(WED, "16:00")))
    [offered] = w.clinic.refill_after(w.last(ev.AppointmentRescheduled))
    assert offered.offer is not None and offered.offer.start == at(WED, "10:00")
    w.clinic.decline_offer(entry.waitlist_id)
    w.clinic.put_time_off(PutTimeOff("rosa", "junta", at(WED, "11:00"), at(WED, "12:00")))
    w.clinic.remove_time_off(RemoveTimeOff("rosa", "junta"))
    [again] = w.clinic.refill_after(w.last(ev.TimeOffRemoved))
    assert again.offer is not None and again.offer.start == at(WED, "11:00")


def test_time_off_over_a_held_slot_names_the_entry(w: Waitlisted) -> None:
    booked = w.book(at(WED, "10:00"))
    entry = w.join(2)
    w.cancel_and_refill(booked)
    with pytest.raises(TimeOffConflict) as refused:
        w.clinic.put_time_off(PutTimeOff("rosa", "junta", at(WED, "09:00"), at(WED, "12:00")))
    assert refused.value.details["waitlist_ids"] == [entry.waitlist_id]
    assert refused.value.details["appointment_ids"] == []


def test_the_buffer_keeps_bookings_away_from_a_hold() -> None:
    w = Waitlisted(buffer=10)
    booked = w.book(at(WED, "10:00"))
    w.join(2)
    w.cancel_and_refill(booked)
    with pytest.raises(SlotUnavailable):
        w.book(at(WED, "10:30"), who=9)
    assert at(WED, "10:30") not in w.free(WED)


def test_freed_time_in_the_past_offers_nothing(w: Waitlisted) -> None:
    booked = w.book(at(WED, "10:00"))
    w.join(2)
    w.clinic.cancel(CancelAppointment(booked.appointment_id))
    w.clock.set(at(WED, "11:00").astimezone(UTC))
    assert w.clinic.refill_after(w.last(ev.AppointmentCancelled)) == []


def test_an_answer_to_an_earlier_offer_never_takes_a_later_one(w: Waitlisted) -> None:
    first_visit = w.book(at(WED, "10:00"))
    second_visit = w.book(at(WED, "11:00"), who=5)
    entry = w.join(2)
    w.cancel_and_refill(first_visit)
    earlier = w.entry(entry).offer
    assert earlier is not None
    w.clinic.decline_offer(entry.waitlist_id)
    w.clock.advance(timedelta(minutes=1))
    w.cancel_and_refill(second_visit)
    later = w.entry(entry).offer
    assert later is not None and later.start == at(WED, "11:00")
    with pytest.raises(OfferExpired):
        w.clinic.accept_offer(entry.waitlist_id, offer_id=earlier.appointment_id)
    assert w.clinic.decline_offer(entry.waitlist_id, offer_id=earlier.appointment_id).offer == later
    _, booked = w.clinic.accept_offer(entry.waitlist_id, offer_id=later.appointment_id)
    assert booked.start == at(WED, "11:00")


def test_an_entry_never_offered_has_nothing_to_accept(w: Waitlisted) -> None:
    entry = w.join(2)
    with pytest.raises(InvalidTransition):
        w.clinic.accept_offer(entry.waitlist_id)
    w.clock.set(datetime.combine(THU, time(0, 0), tzinfo=LIMA))
    with pytest.raises(InvalidTransition):  # expired: its range has passed
        w.clinic.accept_offer(entry.waitlist_id)
    assert len(w.store.appointments) == 0


def test_an_opted_out_phone_is_skipped_without_a_read_for_every_entry(w: Waitlisted) -> None:
    booked = w.book(at(WED, "10:00"))
    afternoon = [w.join(n, earliest=time(14, 0)) for n in range(2, 6)]
    reads: list[str] = []

    class Contacts:
        def get(self, key: str) -> object:
            reads.append(key)
            return None

    w.clinic.ports.contacts = Contacts()  # type: ignore[assignment]
    fits = w.join(9)
    [offered] = w.cancel_and_refill(booked)
    assert offered.waitlist_id == fits.waitlist_id
    # The afternoon entries cannot use 10:00: nobody reads their contacts.
    assert reads == [patient(9).key]
    assert all(w.entry(e).status is WaitStatus.WAITING for e in afternoon)


def test_a_night_offer_with_no_time_left_to_answer_is_not_made() -> None:
    w = Waitlisted(notice=60)
    booked = w.book(at(THU, "09:00"), minutes=60)
    entry = w.join(2, WED, THU)
    w.clock.set(at(WED, "23:00").astimezone(UTC))
    [offered] = w.cancel_and_refill(booked)
    # 09:00 could be held only until 08:00, when its message would go: left free instead.
    offer = w.entry(entry).offer
    assert offered.waitlist_id == entry.waitlist_id and offer is not None
    assert (offer.start, offer.expires_at) == (at(THU, "09:30"), at(THU, "08:30"))
    assert at(THU, "09:00") in w.free(THU)


def test_a_sweep_goes_on_past_an_entry_it_cannot_release(w: Waitlisted) -> None:
    first_visit, second_visit = w.book(at(WED, "10:00")), w.book(at(WED, "11:00"), who=5)
    first, second = w.join(2), w.join(3)
    w.cancel_and_refill(first_visit)
    w.cancel_and_refill(second_visit)
    w.clock.advance(timedelta(minutes=HOLD))
    repository = w.clinic.ports.waitlist
    assert repository is not None
    release = repository.release

    def busy_for_the_first(previous: WaitlistEntry, current: WaitlistEntry, offer: object) -> None:
        if previous.waitlist_id == first.waitlist_id:
            raise VersionConflict("in contention")
        release(previous, current, offer)  # type: ignore[arg-type]

    repository.release = busy_for_the_first  # type: ignore[method-assign]
    with pytest.raises(VersionConflict):
        w.clinic.sweep_offers()
    assert w.entry(second).status is WaitStatus.WAITING  # released despite the first
    assert w.entry(first).status is WaitStatus.OFFERED
