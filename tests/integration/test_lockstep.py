"""The memory backend and DynamoDB Local, driven in lockstep, answer and store alike.

A hypothesis state machine runs one random history of commands on two clinics at once: one on
the in-memory adapters, one on the DynamoDB adapters over a fresh DynamoDB Local table. Both
sides get the same ids (a counter shaped like a UUIDv7, one generator per side) and the same
time (one `FixedClock` per side, always moved together). Doctors come and go with random
booking rules (buffer, notice, horizon, holidays worked or not; real national holidays) and
random blocks of time off; patients join the doctors' waitlists, freed time is offered to them
(as the events consumer does), and offers are accepted, declined, withdrawn or left to run
out and be swept. After every step both sides must have answered alike (the same
value or the same error code), and must hold the same appointments, the same time cells (the
day guards' cells), idempotency keys, booking requests, time off, schedule versions and
outbox, the same list pages, the same free slots and the same waitlist; no active appointment
ever lies inside time off; no two active appointments or held offers of a doctor overlap;
every held offer's cells are its own; and after freed time is offered, no waiting entry is
left that a slot of that time would fit.

The memory backend is the reference the unit properties check against the contract; this
machine carries that evidence over to the DynamoDB adapters.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time as clock_time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from adapters.aws.dynamodb import (
    appointment_from_item,
    appointment_pk,
    idempotency_pk,
    owner_tag,
    request_pk,
)
from adapters.holidays import LibraryHolidayCalendar
from adapters.memory.doctors import InMemoryDoctorRepository
from adapters.memory.store import (
    InMemoryAppointmentRepository,
    InMemoryBookingRequestQueue,
    InMemoryBookingRequestRepository,
    InMemoryEventOutbox,
    MemoryStore,
)
from adapters.memory.waitlist import InMemoryWaitlistRepository
from adapters.system import FixedClock
from domain import events as ev
from domain.appointment import Appointment, Status
from domain.booking_request import BookingRequest
from domain.cadence import send_time
from domain.commands import (
    BookAppointment,
    CancelAppointment,
    ChangeStatus,
    JoinWaitlist,
    ListByCountryStatus,
    ListDoctorDay,
    ListTimeOff,
    ListWaitlist,
    PutTimeOff,
    RegisterDoctor,
    RemoveTimeOff,
    RescheduleAppointment,
)
from domain.countries import CountryCatalog
from domain.errors import CitasError
from domain.rules import Rules
from domain.schedule import cells
from domain.time_off import TimeOff
from domain.use_cases import Clinic, ListResult
from domain.use_cases.doctors import TimeOffResult
from domain.waitlist import WaitlistEntry, hold_until
from entrypoints.http_responses import booking_request_json
from tests.integration.aws_world import (
    Repositories,
    all_items,
    fresh_table,
    held_time,
    local_client,
)
from tests.integration.histories import (
    DOCTORS,
    ID_EPOCH_MS,
    IDEMPOTENCY_KEYS,
    LONG_DAYS,
    OFFICE,
    PATIENTS,
    START,
    days_ahead,
    doctor_ids,
    outcome_of,
    patients,
    registered_doctor_ids,
    slot_counts,
    whens,
)
from tests.support.dynamodb_local import DynamoDBLocal

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

pytestmark = pytest.mark.dynamodb_local

T = TypeVar("T")

# Small enough for about a minute on two cores with DynamoDB Local, large enough to reach
# replays, conflicts, long moves (to another day, in one transaction), reminders and paging.
MAX_EXAMPLES = 20
STEPS = 20

# The same UTC hours for both doctors (11:00-14:00 in Lima, 13:00-16:00 in Santiago), so
# doctors and shared patients collide often.
busy_utc_minutes = st.integers(0, 18).map(lambda n: 16 * 60 + n * 10)


class CountingIds:
    """UUIDv7-shaped ids from a counter: two generators built alike mint the same sequence."""

    def __init__(self, epoch_ms: int = ID_EPOCH_MS) -> None:
        self._epoch_ms = epoch_ms
        self._lock = threading.Lock()
        self.issued = 0

    def new_id(self) -> str:
        """The next id: time-ordered, version 7, RFC 9562 variant."""
        with self._lock:
            n = self.issued
            self.issued += 1
        value = ((self._epoch_ms + n) & ((1 << 48) - 1)) << 80
        value |= 0x7 << 76
        value |= (n & 0xFFF) << 64
        value |= 0b10 << 62
        value |= n
        return str(uuid.UUID(int=value))


def test_counting_ids_are_uuid7_shaped_ordered_and_equal_across_generators() -> None:
    first, second = CountingIds(), CountingIds()
    ids = [first.new_id() for _ in range(5000)]
    assert ids == [second.new_id() for _ in range(5000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert {uuid.UUID(i).version for i in ids} == {7}
    assert {uuid.UUID(i).variant for i in ids} == {uuid.RFC_4122}


class Side:
    """One clinic with its clock and ids; `label` names the backend in failure messages."""

    def __init__(self, label: str, repos: Repositories) -> None:
        self.label = label
        self.repos = repos
        self.clock = FixedClock(START)
        self.ids = CountingIds()
        self.clinic = Clinic(
            repos.appointments,
            repos.doctors,
            repos.requests,
            InMemoryBookingRequestQueue(),
            self.clock,
            self.ids,
            CountryCatalog(),
            clinic_id="demo",
            holidays=HOLIDAYS,
            waitlist=repos.waitlist,
            hold_minutes=HOLD_MINUTES,
        )


HOLD_MINUTES = 30
# The events that free a doctor's time: the events consumer offers it to the waitlist.
FREEING = (
    ev.AppointmentCancelled,
    ev.AppointmentRescheduled,
    ev.TimeOffRemoved,
    ev.WaitlistOfferExpired,
)

# One calendar for both sides: the same national holidays, read once.
HOLIDAYS = LibraryHolidayCalendar()
# Three blocks of time off per doctor at most, so replacing and removing one is frequent.
TIME_OFF_IDS = ("vacaciones", "congreso", "descanso")


def comparable(outcome: object) -> object:
    """What must be equal between the two sides: values as plain data, errors by code."""
    if isinstance(outcome, CitasError):
        return ("error", outcome.code)
    if isinstance(outcome, Appointment | WaitlistEntry):
        return outcome.snapshot()
    if isinstance(outcome, ListResult):
        # Tokens wrap each backend's own cursor: compared page by page in `page_through`.
        return ([a.snapshot() for a in outcome.items], outcome.next_token is None)
    if isinstance(outcome, TimeOff):
        return outcome.snapshot()
    if isinstance(outcome, TimeOffResult):
        return (outcome.block.snapshot(), outcome.created, outcome.doctor)
    if isinstance(outcome, BookingRequest):
        return (booking_request_json(outcome), outcome.country, outcome.command.to_dict())
    if isinstance(outcome, tuple):
        return tuple(comparable(part) for part in outcome)
    if isinstance(outcome, list):
        return [comparable(part) for part in outcome]
    return outcome


def decoded(token: str) -> dict[str, Any]:
    """The JSON inside a page token (`q`: the query's digest, `c`: the backend cursor)."""
    body = token.split(".")[0]  # `<payload>.<mac>`
    payload: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return payload


def cursor_position(cursor: Mapping[str, Any]) -> str:
    """The appointment id a cursor stops after, whatever the backend's cursor shape."""
    if set(cursor) == {"start", "id"}:
        return str(cursor["id"])
    return str(cursor["pk"]).removeprefix("demo#APPT#")


class LockstepMachine(RuleBasedStateMachine):
    """The same commands on memory and on DynamoDB Local; both must always agree."""

    endpoint_url: ClassVar[str] = ""
    stats: ClassVar[Counter[str]] = Counter()

    appointments = Bundle("appointments")
    entries = Bundle("waitlist")
    _client: ClassVar[DynamoDBClient | None] = None

    @classmethod
    def shared_client(cls) -> DynamoDBClient:
        """One client for every history: building a boto3 client costs more than a table."""
        if cls._client is None:
            cls._client = local_client(cls.endpoint_url)
        return cls._client

    def __init__(self) -> None:
        super().__init__()
        self.client: DynamoDBClient = self.shared_client()
        self.table = fresh_table(self.client)
        self.store = MemoryStore()
        memory = Repositories(
            InMemoryAppointmentRepository(self.store, clinic_id="demo"),
            InMemoryDoctorRepository(self.store, clinic_id="demo"),
            InMemoryBookingRequestRepository(self.store, clinic_id="demo"),
            InMemoryEventOutbox(self.store),
            InMemoryWaitlistRepository(self.store, clinic_id="demo"),
        )
        self.memory = Side("memory", memory)
        # Outbox events already handed to the waitlist's refill, by id.
        self.refilled: set[str] = set()
        self.dynamodb = Side("dynamodb", Repositories.dynamodb(self.table, self.client))
        self.bookings: list[tuple[BookAppointment, str | None]] = []
        self.stats["examples"] += 1
        self.register_the_first_doctors()

    def teardown(self) -> None:
        self.client.delete_table(TableName=self.table)
        held = len(self.store.appointments)
        self.stats["appointments"] += held
        self.stats["most appointments in one history"] = max(
            held, self.stats["most appointments in one history"]
        )

    # Running a command on both sides --------------------------------------------------

    def both(self, name: str, action: Callable[[Clinic], T]) -> tuple[T | CitasError, ...]:
        """Run `action` on each side; fail unless both answered alike."""
        self.stats["steps"] += 1
        self.stats[name] += 1
        first = outcome_of(lambda: action(self.memory.clinic))
        second = outcome_of(lambda: action(self.dynamodb.clinic))
        assert comparable(first) == comparable(second), (
            f"{name}: {self.memory.label} answered {first!r},"
            f" {self.dynamodb.label} answered {second!r}"
        )
        if isinstance(first, CitasError):
            self.stats[f"{name}: {first.code}"] += 1
        return first, second

    def set_clock(self, instant: datetime) -> None:
        self.memory.clock.set(instant)
        self.dynamodb.clock.set(instant)

    def now(self) -> datetime:
        return self.memory.clock.now()

    def local_start(self, doctor_id: str, days: int, when: tuple[str, int]) -> datetime:
        kind, minute = when
        zone = DOCTORS[doctor_id][1]
        day = self.now().astimezone(zone).date() + timedelta(days=days)
        if kind != "wall":
            opens = 9 * 60 if kind == "am" else 14 * 60
            minute = min(opens + minute * self.slot_of(doctor_id), 21 * 60)
            while day.weekday() >= 5:
                day += timedelta(days=1)
        return datetime.combine(day, time(minute // 60, minute % 60), tzinfo=zone)

    def busy_start(self, days: int, utc_minute: int) -> datetime:
        day = self.now().date() + timedelta(days=days)
        return datetime.combine(day, time(utc_minute // 60, utc_minute % 60), tzinfo=UTC)

    def slot_of(self, doctor_id: str) -> int:
        doctor = self.memory.repos.doctors.get(doctor_id)
        return doctor.slot_minutes if doctor is not None else 30

    def duration(self, doctor_id: str, slots: int) -> int:
        """`slots` of the doctor's current slot length; 0 asks for the longest visit, 240."""
        return 240 if slots == 0 else slots * self.slot_of(doctor_id)

    # Rules: doctors --------------------------------------------------------------------

    def register_the_first_doctors(self) -> None:
        for doctor_id, slot in (("rosa", 30), ("matias", 20)):
            country = DOCTORS[doctor_id][0]
            self.both(
                "register_doctor",
                lambda c, d=doctor_id, s=slot, k=country: c.register_doctor(
                    RegisterDoctor(d, f"Dr. {d}", k, OFFICE, slot_minutes=s)
                ),
            )

    @initialize(
        target=appointments,
        plan=st.lists(
            st.tuples(
                st.sampled_from(["rosa", "matias"]),
                patients,
                st.integers(1, 3),
                st.tuples(st.sampled_from(["am", "pm"]), st.integers(0, 7)),
                st.integers(1, 2),
            ),
            min_size=2,
            max_size=8,
        ),
    )
    def book_a_first_week(self, plan: list[tuple[str, int, int, tuple[str, int], int]]) -> object:
        booked = []
        for doctor_id, who, days, when, slots in plan:
            start = self.local_start(doctor_id, days, when)
            command = BookAppointment(
                doctor_id, PATIENTS[who], start, self.duration(doctor_id, slots)
            )
            appointment_id = self.try_booking(command, None)
            if isinstance(appointment_id, str):
                booked.append(appointment_id)
        return multiple(*booked)

    @rule(
        doctor_id=doctor_ids,
        slot=st.sampled_from([10, 15, 20, 30, 60]),
        long_days=st.booleans(),
    )
    def register_or_replace_a_doctor(self, doctor_id: str, slot: int, long_days: bool) -> None:
        country = DOCTORS[doctor_id][0]
        hours = LONG_DAYS if long_days else OFFICE
        self.both(
            "register_doctor",
            lambda c: c.register_doctor(
                RegisterDoctor(doctor_id, f"Dr. {doctor_id}", country, hours, slot_minutes=slot)
            ),
        )

    @rule(
        doctor_id=doctor_ids,
        slot=st.sampled_from([10, 20, 30]),
        buffer=st.sampled_from([0, 5, 7, 10, 30]),
        notice=st.sampled_from([0, 60, 600, 2880]),
        horizon=st.sampled_from([1, 2, 90]),
        holidays=st.booleans(),
    )
    def give_a_doctor_booking_rules(
        self, doctor_id: str, slot: int, buffer: int, notice: int, horizon: int, holidays: bool
    ) -> None:
        country = DOCTORS[doctor_id][0]
        command = RegisterDoctor(
            doctor_id,
            f"Dr. {doctor_id}",
            country,
            OFFICE,
            slot_minutes=slot,
            buffer_minutes=buffer,
            min_notice_minutes=notice,
            booking_horizon_days=horizon,
            works_on_holidays=holidays,
        )
        self.both("register_doctor", lambda c: c.register_doctor(command))

    # Rules: time off -------------------------------------------------------------------

    @rule(
        doctor_id=doctor_ids,
        block=st.sampled_from(TIME_OFF_IDS),
        days=st.integers(-1, 3),
        when=whens,
        hours=st.sampled_from([1, 2, 4, 30, 24 * 9]),
        reason=st.sampled_from([None, "congreso"]),
    )
    def put_time_off(
        self,
        doctor_id: str,
        block: str,
        days: int,
        when: tuple[str, int],
        hours: int,
        reason: str | None,
    ) -> None:
        start = self.local_start(doctor_id, days, when)
        command = PutTimeOff(doctor_id, block, start, start + timedelta(hours=hours), reason)
        self.both("put_time_off", lambda c: c.put_time_off(command))

    @rule(
        target=appointments,
        doctor_id=registered_doctor_ids,
        who=patients,
        days=days_ahead,
        when=whens,
        hours=st.sampled_from([1, 3]),
    )
    def put_time_off_then_book_inside_and_next_to_it(
        self, doctor_id: str, who: int, days: int, when: tuple[str, int], hours: int
    ) -> object:
        start = self.local_start(doctor_id, days, when)
        block = PutTimeOff(doctor_id, "congreso", start, start + timedelta(hours=hours))
        self.both("put_time_off", lambda c: c.put_time_off(block))
        self.try_booking(BookAppointment(doctor_id, PATIENTS[who], start), None)
        return self.try_booking(BookAppointment(doctor_id, PATIENTS[who], block.end), None)

    @precondition(lambda self: bool(self.store.time_off))
    @rule(doctor_id=doctor_ids, block=st.sampled_from(TIME_OFF_IDS))
    def remove_time_off(self, doctor_id: str, block: str) -> None:
        self.both("remove_time_off", lambda c: c.remove_time_off(RemoveTimeOff(doctor_id, block)))

    @rule(doctor_id=doctor_ids, days=st.integers(-1, 3), span=st.integers(0, 10))
    def list_time_off(self, doctor_id: str, days: int, span: int) -> None:
        day = self.now().astimezone(DOCTORS[doctor_id][1]).date() + timedelta(days=days)
        command = ListTimeOff(doctor_id, day, day + timedelta(days=span))
        self.both("list_time_off", lambda c: c.list_time_off(command))

    # Rules: booking --------------------------------------------------------------------

    @rule(
        target=appointments,
        doctor_id=registered_doctor_ids,
        who=patients,
        days=days_ahead,
        when=whens,
        slots=slot_counts,
        key=st.sampled_from(IDEMPOTENCY_KEYS),
        notes=st.sampled_from([None, "primera consulta"]),
    )
    def book(
        self,
        doctor_id: str,
        who: int,
        days: int,
        when: tuple[str, int],
        slots: int,
        key: str | None,
        notes: str | None,
    ) -> object:
        start = self.local_start(doctor_id, days, when)
        minutes = self.duration(doctor_id, slots) if slots != 1 else None
        return self.try_booking(
            BookAppointment(doctor_id, PATIENTS[who], start, minutes, notes), key
        )

    @rule(
        target=appointments,
        doctor_id=st.sampled_from(["rosa", "matias"]),
        who=patients,
        days=st.integers(0, 2),
        utc_minute=busy_utc_minutes,
        slots=st.integers(1, 2),
        key=st.sampled_from(IDEMPOTENCY_KEYS),
    )
    def book_in_the_hours_both_doctors_share(
        self, doctor_id: str, who: int, days: int, utc_minute: int, slots: int, key: str | None
    ) -> object:
        start = self.busy_start(days, utc_minute)
        command = BookAppointment(doctor_id, PATIENTS[who], start, self.duration(doctor_id, slots))
        return self.try_booking(command, key)

    @precondition(lambda self: bool(self.bookings))
    @rule(target=appointments, nth=st.integers(0, 50))
    def repeat_an_earlier_booking(self, nth: int) -> object:
        command, key = self.bookings[nth % len(self.bookings)]
        return self.try_booking(command, key)

    def try_booking(self, command: BookAppointment, key: str | None) -> object:
        self.bookings.append((command, key))
        known = {i for _, i in self.store.appointments}
        booked, _ = self.both("book", lambda c: c.book(command, key))
        if isinstance(booked, CitasError) or booked.appointment_id in known:
            return multiple()  # refused, or a replay of a key's first booking
        return booked.appointment_id

    @rule(
        target=appointments,
        doctor_id=registered_doctor_ids,
        who=patients,
        days=days_ahead,
        when=whens,
    )
    def request_a_booking_and_let_the_worker_book_it(
        self, doctor_id: str, who: int, days: int, when: tuple[str, int]
    ) -> object:
        command = BookAppointment(doctor_id, PATIENTS[who], self.local_start(doctor_id, days, when))
        accepted, _ = self.both("request_booking", lambda c: c.request_booking(command))
        if isinstance(accepted, CitasError):
            return multiple()
        request_id = accepted.request_id
        done, _ = self.both(
            "process_booking_request", lambda c: c.process_booking_request(request_id)
        )
        self.both("process_booking_request", lambda c: c.process_booking_request(request_id))
        self.both("booking_request", lambda c: c.booking_request(request_id))
        if isinstance(done, CitasError) or done.appointment_id is None:
            return multiple()
        return done.appointment_id

    # Rules: changes --------------------------------------------------------------------

    @rule(
        appointment_id=appointments,
        days=days_ahead,
        when=whens,
        slots=st.none() | slot_counts,
        if_match=st.booleans(),
    )
    def reschedule(
        self,
        appointment_id: str,
        days: int,
        when: tuple[str, int],
        slots: int | None,
        if_match: bool,
    ) -> None:
        current = self.store.appointments["demo", appointment_id]
        start = self.local_start(current.doctor_id, days, when)
        minutes = None if slots is None else self.duration(current.doctor_id, slots)
        version = current.version if if_match else None
        moved, _ = self.both(
            "reschedule",
            lambda c: c.reschedule(RescheduleAppointment(appointment_id, start, minutes, version)),
        )
        if isinstance(moved, Appointment) and moved.duration_minutes == 240:
            self.stats["moves of a 4-hour visit (one transaction)"] += 1

    @rule(
        appointment_id=appointments,
        status=st.sampled_from(
            [Status.CONFIRMED, Status.CONFIRMED, Status.CANCELLED, Status.COMPLETED, Status.NO_SHOW]
        ),
        reason=st.sampled_from([None, "el paciente viaja"]),
        stale=st.booleans(),
    )
    def change_status(
        self, appointment_id: str, status: Status, reason: str | None, stale: bool
    ) -> None:
        # Now and then with an If-Match one version behind: a 412 on both sides.
        current = self.store.appointments["demo", appointment_id].version
        version = current - 1 if stale and current > 1 else None
        self.both(
            "change_status",
            lambda c: c.change_status(ChangeStatus(appointment_id, status, reason, version)),
        )

    @rule(appointment_id=appointments)
    def cancel_as_delete_does(self, appointment_id: str) -> None:
        self.both("cancel", lambda c: c.cancel(CancelAppointment(appointment_id)))

    @rule(appointment_id=appointments)
    def get(self, appointment_id: str) -> None:
        self.both("get", lambda c: c.get(appointment_id))

    # Rules: time -----------------------------------------------------------------------

    @rule(minutes=st.integers(1, 20 * 60))
    def advance_the_clock(self, minutes: int) -> None:
        self.stats["advance_clock"] += 1
        self.set_clock(self.now() + timedelta(minutes=minutes))

    @rule(appointment_id=appointments, late=st.integers(0, 45))
    def advance_the_clock_past_a_start(self, appointment_id: str, late: int) -> None:
        self.stats["advance_clock"] += 1
        target = self.store.appointments["demo", appointment_id].start + timedelta(minutes=late)
        if target > self.now():
            self.set_clock(target)

    @rule(
        appointment_id=appointments,
        lead=st.sampled_from([48, 24, 2]),
        after_mark=st.integers(0, 7 * 60),
    )
    def reach_a_cadence_mark_and_run_the_cadence(
        self, appointment_id: str, lead: int, after_mark: int
    ) -> None:
        start = self.store.appointments["demo", appointment_id].start
        target = start - timedelta(hours=lead) + timedelta(minutes=after_mark)
        if target > self.now():
            self.set_clock(target)
        self.run_cadence()

    @rule()
    def run_cadence(self) -> None:
        recorded, _ = self.both("run_cadence", lambda c: c.run_cadence())
        if isinstance(recorded, list):
            self.stats["cadence steps"] += len(recorded)

    # Rules: the waitlist ---------------------------------------------------------------

    @rule(
        target=entries,
        doctor_id=registered_doctor_ids,
        who=patients,
        days=st.integers(-1, 3),
        span=st.sampled_from([0, 1, 3, 70]),
        window=st.sampled_from([None, (9, 13), (14, 18), (12, 12)]),
        slots=st.sampled_from([None, 1, 2]),
    )
    def join_the_waitlist(
        self,
        doctor_id: str,
        who: int,
        days: int,
        span: int,
        window: tuple[int, int] | None,
        slots: int | None,
    ) -> object:
        first = self.now().astimezone(DOCTORS[doctor_id][1]).date() + timedelta(days=days)
        earliest = latest = None
        if window is not None:
            earliest, latest = time(window[0], 0), time(window[1], 0)
        minutes = None if slots is None else slots * self.slot_of(doctor_id)
        command = JoinWaitlist(
            doctor_id,
            PATIENTS[who],
            first,
            first + timedelta(days=span),
            earliest,
            latest,
            minutes,
        )
        joined, _ = self.both("join_waitlist", lambda c: c.join_waitlist(command))
        return multiple() if isinstance(joined, CitasError) else joined.waitlist_id

    @initialize(
        target=entries,
        plan=st.lists(
            st.tuples(st.sampled_from(["rosa", "matias"]), patients, st.integers(0, 2)),
            min_size=1,
            max_size=4,
        ),
    )
    def put_patients_on_the_waitlists(self, plan: list[tuple[str, int, int]]) -> object:
        joined = []
        for doctor_id, who, span in plan:
            first = self.now().astimezone(DOCTORS[doctor_id][1]).date()
            command = JoinWaitlist(
                doctor_id, PATIENTS[who], first, first + timedelta(days=span + 1)
            )
            entry, _ = self.both("join_waitlist", lambda c, k=command: c.join_waitlist(k))
            if not isinstance(entry, CitasError):
                joined.append(entry.waitlist_id)
        return multiple(*joined)

    @rule(target=entries, appointment_id=appointments, who=patients)
    def join_for_a_visits_day_then_cancel_it_and_offer_the_time(
        self, appointment_id: str, who: int
    ) -> object:
        visit = self.store.appointments["demo", appointment_id]
        day = visit.start.astimezone(DOCTORS[visit.doctor_id][1]).date()
        command = JoinWaitlist(visit.doctor_id, PATIENTS[who], day, day)
        joined, _ = self.both("join_waitlist", lambda c: c.join_waitlist(command))
        self.both("cancel", lambda c: c.cancel(CancelAppointment(appointment_id)))
        self.offer_the_freed_time_as_the_events_consumer_does()
        return multiple() if isinstance(joined, CitasError) else joined.waitlist_id

    @rule()
    def offer_the_freed_time_as_the_events_consumer_does(self) -> None:
        for event in list(self.store.outbox.values()):
            if event.event_id in self.refilled or not isinstance(event, FREEING):
                continue
            self.refilled.add(event.event_id)
            offered, _ = self.both("refill_after", lambda c, e=event: c.refill_after(e))
            if isinstance(offered, list):
                self.stats["offers made"] += len(offered)
            self.no_waiting_entry_fits_the_time(event)

    def no_waiting_entry_fits_the_time(self, event: ev.Event) -> None:
        """After a refill, every fitting start of the freed time is held, booked or refused."""
        doctor, start, end = self.freed_by(event)
        now = self.now()
        schedule = self.memory.repos.doctors.schedule(doctor, now - timedelta(hours=5))
        if schedule is None:
            return
        rules = Rules(schedule, now, lambda c, d: HOLIDAYS.holidays(c, d.year).get(d))
        for entry in list(self.store.waitlist.values()):
            if entry.doctor_id != doctor or not entry.is_waiting(now):
                continue
            for at in self.fitting_starts(rules, entry, start, end):
                assert not self.could_hold(rules, entry, at), (
                    f"{entry.waitlist_id} waits although {at} of the freed time fits it"
                )

    def freed_by(self, event: ev.Event) -> tuple[str, datetime, datetime]:
        """The doctor and the span of time an event freed (read here, not by the use case)."""
        data = event.data
        if event.appointment_id is not None:
            doctor = self.store.appointments["demo", event.appointment_id].doctor_id
        else:
            doctor = str(data["doctor_id"])
        moved = isinstance(event, ev.AppointmentRescheduled)
        start, end = ("previous_start", "previous_end") if moved else ("start", "end")
        return doctor, datetime.fromisoformat(data[start]), datetime.fromisoformat(data[end])

    def fitting_starts(
        self, rules: Rules, entry: WaitlistEntry, start: datetime, end: datetime
    ) -> list[datetime]:
        length = timedelta(minutes=entry.duration_minutes)
        day, last = rules.doctor.local(start - length).date(), rules.doctor.local(end).date()
        found = []
        while day <= last:
            found += [
                s.start
                for s in rules.doctor.slots_on(day)
                if s.start < end and start < s.start + length and entry.fits(s.start)
            ]
            day += timedelta(days=1)
        return found

    def could_hold(self, rules: Rules, entry: WaitlistEntry, at: datetime) -> bool:
        """Whether `at` could be held for `entry` now: every rule and every cell allows it."""
        minutes = entry.duration_minutes
        end = at + timedelta(minutes=minutes)
        if rules.refusal(at, minutes) is not None:
            return False
        expires = hold_until(
            send_time(rules.now, at, entry.time_zone),
            at,
            HOLD_MINUTES,
            rules.doctor.min_notice_minutes,
        )
        if expires <= rules.now:
            return False
        pad = rules.schedule.buffer
        doctor = {("demo", "doctor", entry.doctor_id, c) for c in cells(at - pad, end + pad)}
        patient = {("demo", "patient", entry.patient.key, c) for c in cells(at, end)}
        return not any(c in self.store.cells for c in doctor | patient)

    @precondition(lambda self: any(e.offer for e in self.store.waitlist.values()))
    @rule(nth=st.integers(0, 10), by_patient=st.booleans())
    def accept_a_held_offer(self, nth: int, by_patient: bool) -> None:
        held = sorted(k for (_, k), e in self.store.waitlist.items() if e.offer is not None)
        entry_id = held[nth % len(held)]
        accepted, _ = self.both(
            "accept_offer", lambda c: c.accept_offer(entry_id, by_patient=by_patient)
        )
        if not isinstance(accepted, CitasError):
            self.stats["offers accepted"] += 1

    @rule(entry_id=entries)
    def accept_an_offer(self, entry_id: str) -> None:
        self.both("accept_offer", lambda c: c.accept_offer(entry_id))

    @rule(entry_id=entries)
    def decline_an_offer(self, entry_id: str) -> None:
        self.both("decline_offer", lambda c: c.decline_offer(entry_id))

    @rule(entry_id=entries)
    def withdraw_from_the_waitlist(self, entry_id: str) -> None:
        self.both("withdraw", lambda c: c.withdraw_from_waitlist(entry_id))

    @rule(entry_id=entries, after=st.sampled_from([-1, 0, 0, 1, 5]))
    def reach_an_offers_expiry_and_sweep(self, entry_id: str, after: int) -> None:
        offer = self.store.waitlist["demo", entry_id].offer
        if offer is not None:
            target = offer.expires_at + timedelta(seconds=after)
            if target > self.now():
                self.set_clock(target)
        swept, _ = self.both("sweep_offers", lambda c: c.sweep_offers())
        if isinstance(swept, list):
            self.stats["offers swept"] += len(swept)

    @rule(doctor_id=doctor_ids, limit=st.integers(1, 3))
    def list_a_waitlist(self, doctor_id: str, limit: int) -> None:
        self.both("list_waitlist", lambda c: c.list_waitlist(ListWaitlist(doctor_id, limit)))

    # Rules: reads ----------------------------------------------------------------------

    @rule(doctor_id=doctor_ids, days=st.integers(-1, 3), limit=st.integers(1, 3))
    def list_a_doctors_day_to_the_last_page(self, doctor_id: str, days: int, limit: int) -> None:
        day = self.now().astimezone(DOCTORS[doctor_id][1]).date() + timedelta(days=days)
        self.page_through(
            "list_doctor_day",
            lambda c, token: c.list_doctor_day(ListDoctorDay(doctor_id, day, limit, token)),
        )

    @rule(
        country=st.sampled_from(["PE", "PE", "CL", "CL", "AR"]),
        status=st.sampled_from(list(Status)),
        start_from=st.none() | st.integers(-24, 96),
        start_to=st.none() | st.integers(-24, 96),
        limit=st.integers(1, 3),
    )
    def list_a_country_status_to_the_last_page(
        self,
        country: str,
        status: Status,
        start_from: int | None,
        start_to: int | None,
        limit: int,
    ) -> None:
        low = None if start_from is None else self.now() + timedelta(hours=start_from)
        high = None if start_to is None else self.now() + timedelta(hours=start_to)
        self.page_through(
            "list_by_country_status",
            lambda c, token: c.list_by_country_status(
                ListByCountryStatus(country, status, low, high, limit, token)
            ),
        )

    def page_through(self, name: str, fetch: Callable[[Clinic, str | None], ListResult]) -> None:
        """Follow both sides' tokens to the last page, comparing page by page."""
        tokens: dict[str, str | None] = {"memory": None, "dynamodb": None}
        for _ in range(100):
            first, second = self.both(name, self.with_tokens(fetch, tokens))
            if isinstance(first, CitasError) or isinstance(second, CitasError):
                return
            self.stats[f"{name} pages"] += 1
            assert (first.next_token is None) == (second.next_token is None), (first, second)
            if first.next_token is None or second.next_token is None:
                return
            mine, theirs = decoded(first.next_token), decoded(second.next_token)
            assert mine["q"] == theirs["q"], "the two backends bound the token to other queries"
            last = first.items[-1].appointment_id
            assert cursor_position(mine["c"]) == cursor_position(theirs["c"]) == last
            if first.next_token != second.next_token:
                # Different cursor shapes: a token is only good on the backend that made it.
                swapped = {"memory": second.next_token, "dynamodb": first.next_token}
                self.both(
                    f"{name} with the other backend's token", self.with_tokens(fetch, swapped)
                )
            tokens = {"memory": first.next_token, "dynamodb": second.next_token}
        raise AssertionError("more than 100 pages")

    def with_tokens(
        self, fetch: Callable[[Clinic, str | None], ListResult], tokens: Mapping[str, str | None]
    ) -> Callable[[Clinic], ListResult]:
        """`fetch` with the token meant for whichever side runs it."""
        by_clinic = {
            id(self.memory.clinic): tokens["memory"],
            id(self.dynamodb.clinic): tokens["dynamodb"],
        }
        return lambda clinic: fetch(clinic, by_clinic[id(clinic)])

    @rule(doctor_id=doctor_ids, days=st.integers(-1, 3))
    def availability(self, doctor_id: str, days: int) -> None:
        day = self.now().astimezone(DOCTORS[doctor_id][1]).date() + timedelta(days=days)
        found, _ = self.both("availability", lambda c: c.availability(doctor_id, day))
        if not isinstance(found, CitasError):
            self.stats["availability slots"] += len(found.slots)

    # Invariants ------------------------------------------------------------------------

    @invariant()
    def both_sides_minted_the_same_ids(self) -> None:
        self.stats["checks"] += 1
        assert self.memory.ids.issued == self.dynamodb.ids.issued

    @invariant()
    def no_active_appointment_lies_inside_time_off(self) -> None:
        for (clinic, doctor_id, _), block in self.store.time_off.items():
            inside = [
                a.appointment_id
                for a in self.store.appointments.values()
                if a.clinic_id == clinic
                and a.doctor_id == doctor_id
                and a.is_active
                and block.overlaps(a.start, a.end)
            ]
            assert inside == [], (block, inside)

    @invariant()
    def no_doctor_holds_two_overlapping_visits_or_offers(self) -> None:
        spans: dict[str, list[tuple[datetime, datetime, str]]] = {}
        for a in self.store.appointments.values():
            if a.is_active:
                spans.setdefault(a.doctor_id, []).append((a.start, a.end, a.appointment_id))
        for e in self.store.waitlist.values():
            if e.offer is not None:
                offer = e.offer
                spans.setdefault(e.doctor_id, []).append((offer.start, offer.end, e.waitlist_id))
                # A held offer's cells are its own: nobody else's tag is in them.
                for cell in cells(offer.start, offer.end):
                    key = ("demo", "doctor", e.doctor_id, cell)
                    assert self.store.cells.get(key) == offer.appointment_id, (e, cell)
        for doctor_id, held in spans.items():
            held.sort()
            for (_, first_end, first), (second_start, _, second) in itertools.pairwise(held):
                assert first_end <= second_start, (doctor_id, first, second)

    @invariant()
    def every_waitlist_entry_reads_back_the_same_on_both_sides(self) -> None:
        for _, entry_id in self.store.waitlist:
            first, second = (
                side.clinic.waitlist_entry(entry_id) for side in (self.memory, self.dynamodb)
            )
            assert first.snapshot() == second.snapshot()

    @invariant()
    def both_sides_keep_the_same_time_off_and_schedule_versions(self) -> None:
        items = all_items(self.client, self.table)
        blocks = {
            (str(i["doctor_id"]), str(i["time_off_id"])): TimeOff.from_snapshot(i)
            for i in items
            if str(i["sk"]).startswith("TIMEOFF#")
        }
        assert blocks == {(d, b): block for (_, d, b), block in self.store.time_off.items()}
        versions = {
            str(i["doctor_id"]): int(i.get("schedule_version", 0))
            for i in items
            if i["sk"] == "PROFILE"
        }
        assert versions == {d: v for (_, d), v in self.store.schedule_versions.items()}

    @invariant()
    def every_appointment_reads_back_the_same_on_both_sides(self) -> None:
        for _, appointment_id in self.store.appointments:
            first, second = (
                side.clinic.get(appointment_id) for side in (self.memory, self.dynamodb)
            )
            assert first.snapshot() == second.snapshot()

    @invariant()
    def both_sides_store_the_same_appointments_cells_keys_requests_and_outbox(self) -> None:
        # A test-only Scan: what the adapters wrote, item by item, against the memory store.
        items = all_items(self.client, self.table)
        by_kind: dict[str, dict[str, Any]] = {
            "APPT": {},
            "IDEM": {},
            "REQ": {},
        }
        for item in items:
            # `<clinic>#<KIND>#...`: every item here is the one clinic's.
            kind = str(item["pk"]).removeprefix("demo#").split("#", 1)[0]
            if kind in by_kind:
                by_kind[kind][str(item["pk"])] = item
        store = self.store
        assert {
            pk: appointment_from_item(item).snapshot() for pk, item in by_kind["APPT"].items()
        } == {
            appointment_pk(a.clinic_id, a.appointment_id): a.snapshot()
            for a in store.appointments.values()
        }
        # The day guards hold exactly the memory store's cells, each valued with its holder's tag.
        assert held_time(self.client, self.table) == {
            f"{clinic}#{'DOC' if kind == 'doctor' else 'PAT'}#{owner}#{cell:%Y-%m-%dT%H:%MZ}": (
                owner_tag(holder)
            )
            for (clinic, kind, owner, cell), holder in store.cells.items()
        }
        assert {
            pk: (item["fingerprint"], item["appointment_id"])
            for pk, item in by_kind["IDEM"].items()
        } == {
            idempotency_pk(clinic, key): (record.fingerprint, record.appointment_id)
            for (clinic, key), record in store.idempotency.items()
        }
        assert {
            pk: (item["status"], item.get("appointment_id")) for pk, item in by_kind["REQ"].items()
        } == {
            request_pk(r.clinic_id, r.request_id): (str(r.status), r.appointment_id)
            for r in store.requests.values()
        }
        memory_outbox = [e.to_envelope() for e in store.outbox.values()]
        dynamodb_outbox = [e.to_envelope() for e in self.dynamodb.repos.outbox.pending(1000)]
        assert dynamodb_outbox == memory_outbox


# A failure is shrunk for minutes before it is reported: let it finish.
@pytest.mark.timeout(900)
def test_memory_and_dynamodb_answer_every_random_history_alike(
    dynamodb_local: DynamoDBLocal,
) -> None:
    LockstepMachine.endpoint_url = dynamodb_local.endpoint_url
    LockstepMachine._client = None
    LockstepMachine.stats.clear()
    began = clock_time.perf_counter()
    run_state_machine_as_test(
        LockstepMachine,
        settings=settings(
            max_examples=MAX_EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    stats = LockstepMachine.stats
    print(
        f"\nlockstep: {stats['examples']} histories, {stats['checks']} steps,"
        f" {stats['steps']} commands on each side"
        f" in {clock_time.perf_counter() - began:.1f}s; "
        + ", ".join(f"{name}={n}" for name, n in sorted(stats.items()))
    )
    assert stats["examples"] >= MAX_EXAMPLES // 2
