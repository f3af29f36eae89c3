"""One contract for the waitlist store: entries, offers' holds, accept, release, and their races.

Every test runs on the in-memory reference and on DynamoDB Local (one table for the module,
a clinic of its own per test) and drives the repositories with the real `Clinic` use cases,
so neither backend can be told from the other: a hold is the doctor's time taken in the name
of the offer's appointment, and every change of an entry commits only at its version.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

import pytest

from adapters.aws.dynamodb import DynamoDBEventOutbox, DynamoDBRepositories
from adapters.memory.store import (
    InMemoryBookingRequestQueue,
    InMemoryEventOutbox,
    InMemoryRepositories,
    MemoryStore,
)
from adapters.system import FixedClock, UuidV7Generator
from domain.appointment import Appointment, Status
from domain.commands import (
    BookAppointment,
    CancelAppointment,
    JoinWaitlist,
    ListWaitlist,
    PutTimeOff,
    RegisterDoctor,
)
from domain.countries import CountryCatalog
from domain.errors import (
    InvalidCursor,
    OfferExpired,
    PatientDoubleBooked,
    ScheduleChanged,
    SlotUnavailable,
    TimeOffConflict,
    VersionConflict,
)
from domain.events import Event
from domain.rules import Schedule
from domain.use_cases import Clinic
from domain.waitlist import Offer, Release, WaitlistEntry, WaitStatus
from ports.repositories import ClinicRepositories, EventOutbox, WaitlistRepository
from tests.integration.aws_world import (
    LIMA,
    THU,
    WED,
    WEEKDAY_HOURS,
    at,
    fresh_table,
    local_client,
    patient,
)
from tests.support.dynamodb_local import DynamoDBLocal

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

_DYNAMODB_LOCAL = pytest.param("dynamodb_local", marks=pytest.mark.dynamodb_local)
BACKENDS = ["memory", _DYNAMODB_LOCAL]
on_dynamodb_local = pytest.mark.parametrize("backend", [_DYNAMODB_LOCAL], indirect=True)

# A Tuesday mid-morning in Lima: no quiet hours, so an offer holds for the full HOLD.
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=LIMA).astimezone(UTC)
HOLD = 30
SLOT = timedelta(minutes=30)
# Rosa keeps 10 minutes between visits; Ana none (two offers fit side by side).
ROSA, ANA = "rosa", "ana"


class Backend:
    """One clinic of its own on a backend: its repositories, its outbox, a Clinic on a clock."""

    def __init__(
        self,
        repos: ClinicRepositories,
        outbox: EventOutbox,
        *,
        client: DynamoDBClient | None = None,
        table: str = "",
    ) -> None:
        self.clinic_id = f"w-{uuid.uuid4().hex[:12]}"
        self.repos, self.outbox, self.client, self.table = repos, outbox, client, table
        self.waitlist: WaitlistRepository = repos.waitlist(self.clinic_id)
        self.clock = FixedClock(NOW)
        self.clinic = self.container()
        self.clinic.register_doctor(
            RegisterDoctor(ROSA, "Dra. Rosa", "PE", WEEKDAY_HOURS, buffer_minutes=10)
        )
        self.clinic.register_doctor(RegisterDoctor(ANA, "Dra. Ana", "PE", WEEKDAY_HOURS))

    def container(self, clock: FixedClock | None = None) -> Clinic:
        """A Clinic (its own schedule cache, as one container) over this clinic's storage."""
        return Clinic(
            self.repos.appointments(self.clinic_id),
            self.repos.doctors(self.clinic_id),
            self.repos.requests(self.clinic_id),
            InMemoryBookingRequestQueue(),
            clock or self.clock,
            UuidV7Generator(),
            CountryCatalog(),
            clinic_id=self.clinic_id,
            waitlist=self.waitlist,
            hold_minutes=HOLD,
        )

    def schedule(self, doctor_id: str = ROSA) -> Schedule:
        found = self.repos.doctors(self.clinic_id).schedule(doctor_id, NOW - timedelta(days=1))
        assert found is not None
        return found

    def events(self, kind: str | None = None) -> list[Event]:
        """This clinic's pending outbox events (the table's outbox is shared), oldest first."""
        return [
            e
            for e in self.outbox.pending(10_000)
            if e.clinic_id == self.clinic_id and (kind is None or e.type == kind)
        ]

    def join(self, who: int, day: date = WED, doctor: str = ROSA) -> WaitlistEntry:
        """A waiting entry of patient `who` for one local date."""
        return self.clinic.join_waitlist(JoinWaitlist(doctor, patient(who), day, day))

    def offered(self, who: int, start: datetime, doctor: str = ROSA) -> WaitlistEntry:
        """A new entry of patient `who`, offered `start`: the one slot a refill frees."""
        entry = self.join(who, start.astimezone(LIMA).date(), doctor)
        (made,) = self.clinic.refill(doctor, start, start + SLOT)
        assert made.waitlist_id == entry.waitlist_id
        assert made.offer is not None and made.offer.start == start
        return made

    def book(self, start: datetime, who: int, doctor: str = ROSA) -> Appointment:
        return self.clinic.book(BookAppointment(doctor, patient(who), start))


@pytest.fixture(scope="module")
def shared_table(request: pytest.FixtureRequest) -> Iterator[tuple[DynamoDBClient, str]]:
    """One table of the Terraform shape on the session's DynamoDB Local, for the module."""
    server: DynamoDBLocal = request.getfixturevalue("dynamodb_local")
    client = local_client(server.endpoint_url, pool=24)
    table = fresh_table(client)
    yield client, table
    client.delete_table(TableName=table)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    """A new clinic on one backend: a fresh memory store, or the module's table."""
    if request.param == "memory":
        store = MemoryStore()
        return Backend(InMemoryRepositories(store), InMemoryEventOutbox(store))
    client, table = request.getfixturevalue("shared_table")
    outbox = DynamoDBEventOutbox(table, client, retry_delay=0.001)
    return Backend(DynamoDBRepositories(table, client), outbox, client=client, table=table)


def race(*jobs: Callable[[], Any], late: float = 0.0) -> list[Any]:
    """Run the jobs on threads released together by one barrier; each result or error.

    `late`: the last job starts that many seconds after the others.
    """
    barrier = threading.Barrier(len(jobs))
    results: list[Any] = [None] * len(jobs)

    def run(i: int) -> None:
        barrier.wait(timeout=30)
        if late and i == len(jobs) - 1:
            time.sleep(late)
        try:
            results[i] = jobs[i]()
        except Exception as error:  # the outcome under test
            results[i] = error

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a thread never finished"
    return results


def offer_of(entry: WaitlistEntry) -> Offer:
    assert entry.offer is not None
    return entry.offer


class TestWaitlistStore:
    """The contract every waitlist backend keeps."""

    # --- entries -------------------------------------------------------------------------

    def test_entries_are_stored_listed_oldest_first_and_paged(self, backend: Backend) -> None:
        joined = []
        for n in range(5):
            joined.append(backend.join(n + 1))
            backend.clock.advance(timedelta(minutes=1))
        repo = backend.waitlist
        first = joined[0]
        stored = repo.get(first.waitlist_id)
        assert stored is not None and stored.snapshot() == first.snapshot()
        assert stored.status is WaitStatus.WAITING and stored.version == 1
        assert repo.get("nobody") is None
        with pytest.raises(ValueError, match="already exists"):
            repo.add(first.copy())

        pages, cursor = [], None
        while True:
            page = repo.list_by_doctor(ROSA, 2, cursor)
            pages.append([e.waitlist_id for e in page.items])
            if page.cursor is None:
                break
            cursor = page.cursor
        ids = [e.waitlist_id for e in joined]
        assert pages == [ids[0:2], ids[2:4], ids[4:5]]
        assert repo.list_by_doctor(ANA, 2, None).items == []

        # Two withdrawn (a write that holds no time): `waiting` pages stay full.
        for gone in (joined[1], joined[3]):
            assert backend.clinic.withdraw_from_waitlist(gone.waitlist_id).version == 2
        page = repo.list_by_doctor(ROSA, 2, None, waiting=True)
        assert [e.waitlist_id for e in page.items] == [ids[0], ids[2]]
        rest = repo.list_by_doctor(ROSA, 2, page.cursor, waiting=True)
        assert ([e.waitlist_id for e in rest.items], rest.cursor) == ([ids[4]], None)
        everyone = repo.list_by_doctor(ROSA, 10, None)
        assert [e.status for e in everyone.items] == [
            WaitStatus.WAITING,
            WaitStatus.WITHDRAWN,
            WaitStatus.WAITING,
            WaitStatus.WITHDRAWN,
            WaitStatus.WAITING,
        ]

        # A stale save changes nothing; the use case's signed tokens page the same list.
        with pytest.raises(VersionConflict):
            repo.save(joined[1], joined[1].copy())
        _, listed = backend.clinic.list_waitlist(ListWaitlist(ROSA, limit=3))
        assert [e.waitlist_id for e in listed.items] == ids[:3] and listed.next_token
        _, more = backend.clinic.list_waitlist(ListWaitlist(ROSA, 3, listed.next_token))
        assert [e.waitlist_id for e in more.items] == ids[3:] and more.next_token is None

    @pytest.mark.parametrize(
        "cursor",
        [
            {"start": "2026-12-02T15:00:00+00:00", "id": "x"},
            {"pk": "a#APPT#x", "sk": "APPT", "gsi1pk": "a#DOCTOR#rosa", "gsi1sk": "x"},
            {"created_at": "yesterday", "id": "x"},
            {"created_at": "2026-12-02T15:00:00", "id": "x"},
            {"created_at": "2026-12-02T15:00:00+00:00", "id": 7},
        ],
    )
    def test_a_foreign_cursor_is_refused(self, backend: Backend, cursor: Any) -> None:
        backend.join(1)
        with pytest.raises(InvalidCursor):
            backend.waitlist.list_by_doctor(ROSA, 2, cursor)
        with pytest.raises(InvalidCursor):
            backend.waitlist.list_by_doctor(ROSA, 2, cursor, waiting=True)

    # --- offers hold time ----------------------------------------------------------------

    def test_an_offer_holds_its_slot_and_the_buffer_around_it(self, backend: Backend) -> None:
        slot = at(WED, "10:00")
        entry = backend.offered(1, slot)
        offer = offer_of(entry)
        assert (offer.end, offer.expires_at) == (slot + SLOT, NOW + timedelta(minutes=HOLD))
        assert (entry.status, entry.version) == (WaitStatus.OFFERED, 2)
        stored = backend.waitlist.get(entry.waitlist_id)
        assert stored is not None and stored.snapshot() == entry.snapshot()

        with pytest.raises(SlotUnavailable):
            backend.book(slot, who=2)
        # Rosa's 10-minute buffer: the visits just before and just after are refused too.
        for near in (at(WED, "09:30"), at(WED, "10:30")):
            with pytest.raises(SlotUnavailable):
                backend.book(near, who=3)
        free = {s.start for s in backend.clinic.availability(ROSA, WED).slots}
        assert at(WED, "09:00") in free and at(WED, "11:00") in free
        assert not free & {at(WED, "09:30"), slot, at(WED, "10:30")}

        with pytest.raises(TimeOffConflict) as refused:
            backend.clinic.put_time_off(
                PutTimeOff(ROSA, "congreso", at(WED, "10:15"), at(WED, "12:00"))
            )
        assert refused.value.details["waitlist_ids"] == [entry.waitlist_id]
        assert refused.value.details["appointment_ids"] == []

        repo = backend.waitlist
        assert list(repo.holds(ROSA, at(WED, "00:00"), at(THU, "00:00"))) == [offer]
        assert list(repo.holds(ROSA, at(WED, "00:00"), slot)) == []  # the end is exclusive
        assert list(repo.holds(ROSA, slot, slot)) == []
        assert list(repo.holds(ANA, at(WED, "00:00"), at(THU, "00:00"))) == []
        assert [e.snapshot() for e in repo.offered()] == [entry.snapshot()]
        (made,) = backend.events("WaitlistOfferMade")
        assert made.data["waitlist_id"] == entry.waitlist_id
        assert made.data["appointment_id"] == offer.appointment_id
        # Elsewhere the doctor is still bookable.
        assert backend.book(at(WED, "11:00"), who=4).start == at(WED, "11:00")

    def test_an_offer_is_refused_as_a_booking_would_be(self, backend: Backend) -> None:
        repo, schedule = backend.waitlist, backend.schedule()
        backend.book(at(WED, "11:00"), who=1, doctor=ANA)  # the patient is busy then
        backend.book(at(WED, "15:00"), who=9)  # and Rosa is, here
        waiting = backend.join(1)

        def attempt(start: datetime, previous: WaitlistEntry = waiting) -> WaitlistEntry:
            current = previous.copy()
            offer = Offer(str(uuid.uuid4()), start, start + SLOT, NOW + SLOT, NOW)
            current.make_offer(offer, event_id=str(uuid.uuid4()))
            repo.offer(previous, current, schedule)
            return current

        with pytest.raises(PatientDoubleBooked):
            attempt(at(WED, "11:00"))
        with pytest.raises(SlotUnavailable):
            attempt(at(WED, "15:00"))
        with pytest.raises(SlotUnavailable):
            attempt(at(WED, "15:30"))  # inside Rosa's buffer after the 15:00 visit
        current = waiting.copy()
        current.make_offer(
            Offer("x", at(WED, "16:00"), at(WED, "16:30"), NOW + SLOT, NOW), event_id="e"
        )
        with pytest.raises(ScheduleChanged):
            repo.offer(waiting, current, backend.schedule(ANA))  # another doctor's
        stale = Schedule(schedule.doctor, schedule.version - 1, schedule.time_off)
        with pytest.raises(ScheduleChanged):
            repo.offer(waiting, current, stale)
        stored = repo.get(waiting.waitlist_id)
        assert stored is not None and stored.snapshot() == waiting.snapshot()
        assert backend.events("WaitlistOfferMade") == []

        made = attempt(at(WED, "16:00"))
        with pytest.raises(VersionConflict):
            attempt(at(WED, "17:00"))  # the entry moved on: one offer at a time
        assert [offer_of(e).start for e in repo.offered()] == [offer_of(made).start]
        assert len(backend.events("WaitlistOfferMade")) == 1

    # --- accept --------------------------------------------------------------------------

    def test_accept_books_the_offer_confirmed_in_its_own_name(self, backend: Backend) -> None:
        slot = at(WED, "10:00")
        made = backend.offered(1, slot)
        offer = offer_of(made)
        backend.clock.advance(timedelta(minutes=5))
        entry, booked = backend.clinic.accept_offer(made.waitlist_id)
        assert booked.appointment_id == offer.appointment_id
        assert (booked.status, booked.version, booked.start) == (Status.CONFIRMED, 2, slot)
        assert (entry.status, entry.appointment_id, entry.offer) == (
            WaitStatus.BOOKED,
            offer.appointment_id,
            None,
        )
        assert backend.clinic.get(booked.appointment_id).snapshot() == booked.snapshot()
        stored = backend.waitlist.get(entry.waitlist_id)
        assert stored is not None and stored.snapshot() == entry.snapshot()
        assert list(backend.waitlist.holds(ROSA, slot, slot + SLOT)) == []
        assert list(backend.waitlist.offered()) == []
        # Committed with the booking, in the same order on every backend (the outbox lists
        # one instant's events by id): the booking, then the entry that says so.
        kinds = [e.type for e in backend.events()[-3:]]
        assert kinds == ["AppointmentRequested", "AppointmentConfirmed", "WaitlistOfferAccepted"]
        # Accepting again answers the same booking; the time is the appointment's now.
        again, same = backend.clinic.accept_offer(entry.waitlist_id)
        assert (again.version, same.snapshot()) == (entry.version, booked.snapshot())
        with pytest.raises(SlotUnavailable):
            backend.book(slot, who=2)
        with pytest.raises(PatientDoubleBooked):
            backend.book(slot, who=1, doctor=ANA)
        # Cancelling frees every cell: they were the appointment's, held in its name.
        backend.clinic.cancel(CancelAppointment(booked.appointment_id))
        assert backend.book(slot, who=2).start == slot
        assert backend.book(slot, who=1, doctor=ANA).start == slot

    def test_accept_after_the_hold_ran_out_books_nothing(self, backend: Backend) -> None:
        slot = at(WED, "11:00")
        entry = backend.offered(1, slot)
        offer = offer_of(entry)
        backend.clock.set(offer.expires_at + timedelta(seconds=1))
        with pytest.raises(OfferExpired):
            backend.clinic.accept_offer(entry.waitlist_id)
        assert backend.repos.appointments(backend.clinic_id).get(offer.appointment_id) is None
        stored = backend.waitlist.get(entry.waitlist_id)
        assert stored is not None and stored.snapshot() == entry.snapshot()
        with pytest.raises(SlotUnavailable):
            backend.book(slot, who=2)  # still held until the sweep lets it go
        (ended,) = backend.clinic.sweep_offers()
        assert (ended.status, ended.offer, ended.passed) == (
            WaitStatus.WAITING,
            None,
            frozenset({slot}),
        )
        assert backend.book(slot, who=2).start == slot

    def test_the_store_judges_the_hold_at_the_accept_instant(self, backend: Backend) -> None:
        """An accept that reaches the store at the very expiry instant is too late."""
        slot = at(WED, "11:00")
        entry = backend.offered(1, slot)
        offer = offer_of(entry)

        class Late:
            def __init__(self, inner: WaitlistRepository) -> None:
                self.inner = inner

            def __getattr__(self, name: str) -> Any:
                return getattr(self.inner, name)

            def accept(self, previous: WaitlistEntry, current: WaitlistEntry, *rest: Any) -> None:
                current.updated_at = offer.expires_at
                self.inner.accept(previous, current, *rest)

        late = backend.container()
        late.ports.waitlist = Late(backend.waitlist)
        with pytest.raises(OfferExpired):
            late.accept_offer(entry.waitlist_id)
        assert backend.repos.appointments(backend.clinic_id).get(offer.appointment_id) is None
        stored = backend.waitlist.get(entry.waitlist_id)
        assert stored is not None and stored.snapshot() == entry.snapshot()
        with pytest.raises(SlotUnavailable):
            backend.book(slot, who=2)
        assert not [e for e in backend.events() if e.type.startswith("Appointment")]

    # --- release -------------------------------------------------------------------------

    def test_release_frees_the_cells_once(self, backend: Backend) -> None:
        slot = at(WED, "10:00")
        offered = backend.offered(1, slot)
        offer = offer_of(offered)
        waiting = backend.waitlist.get(offered.waitlist_id)
        assert waiting is not None
        # A release from the entry as it was before the offer (version 1): refused.
        stale = waiting.copy()
        stale.version, stale.status, stale.offer = 1, WaitStatus.WAITING, None
        current = waiting.copy()
        current.release(Release.DECLINED, now=NOW, event_id=str(uuid.uuid4()))
        with pytest.raises(VersionConflict):
            backend.waitlist.release(stale, current, offer)
        again = backend.waitlist.get(offered.waitlist_id)
        assert again is not None and again.snapshot() == offered.snapshot()
        with pytest.raises(SlotUnavailable):
            backend.book(slot, who=2)
        assert backend.events("WaitlistOfferExpired") == []

        declined = backend.clinic.decline_offer(offered.waitlist_id)
        assert (declined.status, declined.version, declined.passed) == (
            WaitStatus.WAITING,
            3,
            frozenset({slot}),
        )
        assert list(backend.waitlist.holds(ROSA, slot, slot + SLOT)) == []
        assert list(backend.waitlist.offered()) == []
        (ended,) = backend.events("WaitlistOfferExpired")
        assert ended.data["reason"] == "declined"
        with pytest.raises(VersionConflict):  # the same release again: already done
            backend.waitlist.release(waiting, current, offer)
        # The entry is never offered the start it let go; the slot is anyone's again.
        assert backend.clinic.refill(ROSA, slot, slot + SLOT) == []
        assert backend.book(slot, who=2).start == slot
        gone = backend.clinic.withdraw_from_waitlist(offered.waitlist_id)
        assert (gone.status, gone.version) == (WaitStatus.WITHDRAWN, 4)

    def test_withdrawing_an_offered_entry_frees_its_slot(self, backend: Backend) -> None:
        slot = at(THU, "09:00")
        entry = backend.offered(1, slot)
        gone = backend.clinic.withdraw_from_waitlist(entry.waitlist_id)
        assert (gone.status, gone.offer) == (WaitStatus.WITHDRAWN, None)
        assert backend.book(slot, who=2).start == slot
        assert list(backend.waitlist.offered()) == []

    # --- races ---------------------------------------------------------------------------

    def test_eight_bookings_of_a_held_slot_all_lose(self, backend: Backend) -> None:
        slot = at(WED, "10:00")
        entry = backend.offered(1, slot)
        containers = [backend.container() for _ in range(8)]
        results = race(
            *(
                partial(c.book, BookAppointment(ROSA, patient(10 + i), slot))
                for i, c in enumerate(containers)
            )
        )
        assert all(isinstance(r, SlotUnavailable) for r in results), results
        _, booked = backend.clinic.accept_offer(entry.waitlist_id)
        assert booked.appointment_id == offer_of(entry).appointment_id

    def test_accept_and_sweep_at_once_exactly_one_wins(self, backend: Backend) -> None:
        """Ten rounds: an accept a second before expiry against the sweep's release.

        An accept reads the entry and the schedule before its one write, a release is that
        write alone: the release starts later and later, so both orders get their turn.
        """
        outcomes: Counter[str] = Counter()
        # A unit of delay: an accept takes a few ms on DynamoDB Local, microseconds in memory.
        unit = 0.005 if backend.client is not None else 0.0003
        starts = [at(day, h) for day in (WED, THU) for h in ("09:00", "11:00", "14:00", "16:00")]
        starts += [at(WED, "17:00"), at(THU, "17:00")]
        for n, slot in enumerate(starts):
            backend.clock.set(NOW)
            entry = backend.offered(100 + n, slot)
            offer = offer_of(entry)
            swept = entry.copy()
            swept.release(Release.EXPIRED, now=offer.expires_at, event_id=str(uuid.uuid4()))
            backend.clock.set(offer.expires_at - timedelta(seconds=1))
            accepting = backend.container()
            accepted, released = race(
                partial(accepting.accept_offer, entry.waitlist_id),
                partial(backend.waitlist.release, entry, swept, offer),
                late=unit * (n % 5) ** 2,
            )
            final = backend.waitlist.get(entry.waitlist_id)
            assert final is not None
            booked = backend.repos.appointments(backend.clinic_id).get(offer.appointment_id)
            if isinstance(accepted, tuple):
                assert isinstance(released, VersionConflict), released
                assert (final.status, final.appointment_id) == (
                    WaitStatus.BOOKED,
                    offer.appointment_id,
                )
                assert booked is not None and booked.status is Status.CONFIRMED
                with pytest.raises(SlotUnavailable):
                    backend.book(slot, who=900 + n)
                outcomes["accept won"] += 1
            else:
                assert isinstance(accepted, OfferExpired), accepted
                assert released is None
                assert (final.status, final.offer, final.version) == (WaitStatus.WAITING, None, 3)
                assert booked is None
                assert backend.book(slot, who=900 + n).start == slot  # the cells are free
                # Out of the next rounds' way: a waiting entry of the day takes their slots.
                backend.clinic.withdraw_from_waitlist(entry.waitlist_id)
                outcomes["sweep won"] += 1
        # Which order each round took is the machine's; that exactly one won is the contract.
        print(f"\naccept vs sweep: {dict(outcomes)}")
        assert sum(outcomes.values()) == len(starts) == 10

    def test_two_refills_of_one_span_offer_each_entry_once(self, backend: Backend) -> None:
        """Two containers refill Ana's freed hour at once: two entries, two offers, no overlap."""
        spans = [(at(THU, h), at(THU, h) + 2 * SLOT) for h in ("09:00", "11:00", "14:00", "16:00")]
        for n, (start, end) in enumerate(spans):
            first = backend.join(200 + 2 * n, THU, ANA)
            second = backend.join(201 + 2 * n, THU, ANA)
            a, b = backend.container(), backend.container()
            made_a, made_b = race(
                partial(a.refill, ANA, start, end), partial(b.refill, ANA, start, end)
            )
            assert isinstance(made_a, list) and isinstance(made_b, list), (made_a, made_b)
            ids = [e.waitlist_id for e in made_a + made_b]
            assert sorted(ids) == sorted([first.waitlist_id, second.waitlist_id]), ids
            offers = []
            for entry in (first, second):
                stored = backend.waitlist.get(entry.waitlist_id)
                assert stored is not None and stored.status is WaitStatus.OFFERED
                assert stored.version == 2
                offers.append(offer_of(stored))
            (x, y) = sorted(offers, key=lambda o: o.start)
            assert (x.start, x.end, y.start, y.end) == (start, start + SLOT, start + SLOT, end)
            made = Counter(str(e.data["waitlist_id"]) for e in backend.events("WaitlistOfferMade"))
            assert made[first.waitlist_id] == made[second.waitlist_id] == 1

    def test_two_cancellations_at_once_share_their_freed_time_between_two_entries(
        self, backend: Backend
    ) -> None:
        """Two visits next to each other cancelled together: each refill may reach both entries."""
        clinic = backend.clinic
        hour = clinic.book(BookAppointment(ANA, patient(300), at(THU, "09:00"), 60))
        half = clinic.book(BookAppointment(ANA, patient(301), at(THU, "10:00"), 30))
        # The older wants an hour (it fits across both freed spans), the younger half of one.
        longer = clinic.join_waitlist(JoinWaitlist(ANA, patient(302), THU, THU, None, None, 60))
        shorter = backend.join(303, THU, ANA)
        for visit in (hour, half):
            clinic.cancel(CancelAppointment(visit.appointment_id))
        spans = [(hour.start, hour.end), (half.start, half.end)]
        a, b = backend.container(), backend.container()
        made = race(
            *(partial(c.refill, ANA, s, e) for c, (s, e) in zip((a, b), spans, strict=True))
        )
        assert all(isinstance(m, list) for m in made), made
        stored = [backend.waitlist.get(e.waitlist_id) for e in (longer, shorter)]
        offers = [offer_of(e) for e in stored if e is not None]
        # Both entries offered, once each, and never the same cells twice.
        assert len(offers) == 2
        made_events = Counter(
            str(e.data["waitlist_id"]) for e in backend.events("WaitlistOfferMade")
        )
        assert made_events == Counter({longer.waitlist_id: 1, shorter.waitlist_id: 1})
        first, second = sorted(offers, key=lambda o: o.start)
        assert first.end <= second.start, (first, second)
        assert {o.end - o.start for o in offers} == {SLOT, 2 * SLOT}


# --- DynamoDB only: what each change costs ----------------------------------------------------


@on_dynamodb_local
def test_each_change_is_one_round_trip(backend: Backend) -> None:
    assert backend.client is not None
    calls: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        calls.update([model.name])

    backend.client.meta.events.register("before-call.dynamodb.*", count)
    try:
        entry = backend.join(1)
        assert calls["PutItem"] == 1 and calls["TransactWriteItems"] == 0
        calls.clear()
        assert backend.waitlist.get(entry.waitlist_id) is not None
        assert calls == {"GetItem": 1}

        schedule = backend.schedule()
        current = entry.copy()
        offer = Offer(str(uuid.uuid4()), at(WED, "10:00"), at(WED, "10:30"), NOW + SLOT, NOW)
        current.make_offer(offer, event_id=str(uuid.uuid4()))
        calls.clear()
        backend.waitlist.offer(entry, current, schedule)
        assert calls == {"TransactWriteItems": 1}

        released = current.copy()
        released.release(Release.DECLINED, now=NOW, event_id=str(uuid.uuid4()))
        calls.clear()
        backend.waitlist.release(current, released, offer)
        assert calls == {"TransactWriteItems": 1}

        offered = backend.offered(2, at(THU, "14:00"))
        calls.clear()
        backend.clinic.accept_offer(offered.waitlist_id)
        # The entry's read, then one transaction (the schedule is the container's cache).
        assert calls == {"GetItem": 1, "TransactWriteItems": 1}, calls

        calls.clear()
        backend.clinic.withdraw_from_waitlist(released.waitlist_id)
        assert calls == {"GetItem": 1, "UpdateItem": 1}, calls
    finally:
        backend.client.meta.events.unregister("before-call.dynamodb.*", count)


@on_dynamodb_local
def test_the_entry_item_keeps_the_ttl_apart_from_the_offer(backend: Backend) -> None:
    assert backend.client is not None
    entry = backend.offered(1, at(WED, "10:00"))
    offer = offer_of(entry)
    key = {"pk": {"S": f"{backend.clinic_id}#WAIT#{entry.waitlist_id}"}, "sk": {"S": "ENTRY"}}
    item = backend.client.get_item(TableName=backend.table, Key=key)["Item"]
    ttl = datetime.fromtimestamp(int(item["expires_at"]["N"]), UTC)
    assert ttl == entry.ends_at + timedelta(days=90)
    assert item["offer_expires"]["S"] == offer.expires_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert item["offer"]["M"]["expires_at"]["S"] == offer.expires_at.astimezone(UTC).isoformat()
    assert item["gsi2pk"]["S"] == f"{backend.clinic_id}#HOLD"
    assert item["gsi1pk"]["S"] == f"{backend.clinic_id}#WAITLIST#{ROSA}"
    backend.clinic.decline_offer(entry.waitlist_id)
    item = backend.client.get_item(TableName=backend.table, Key=key)["Item"]
    assert not {"offer", "offer_expires", "gsi2pk", "gsi2sk"} & set(item)
