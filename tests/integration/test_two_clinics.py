"""Two clinics on one store or table never see, change or block each other's data.

A hypothesis state machine runs one random history of commands of two clinics, `sol` and
`luna`, side by side on ONE shared backend (a `MemoryStore`, or a fresh DynamoDB Local table).
Both clinics have the same doctor ids, the same patients' phones and the same idempotency keys.
Each clinic also runs, command for command, on a reference of its own: a single-clinic system
on a fresh `MemoryStore` where the other clinic does not exist. Every answer of a clinic on the
shared backend must equal its reference's (the same value, or the same error code), and after
every step each clinic's stored data and outbox events must equal its reference's. Equality
with an isolated reference is exactly isolation: anything the other clinic could see, change
or block would make some answer or some stored item differ.

Ids are counters shaped like UUIDv7 (as in `test_lockstep`), one generator per facade; a
clinic's shared facade and its reference mint the same sequence. The two clinics' ids differ
in their node bits, except, when a rule says so, the id a booking or a booking request mints
first (its appointment or request id): that one has no node, so the clinics mint the SAME
appointment and request ids whenever their counters meet, as they all do in the first week
both clinics book alike. Event ids always carry the node: they key the shared outbox, and are
globally unique in production too. Other rules name ids only the other clinic has.

Plain scripted tests below show the two headline cases on both backends, step by step.
"""

from __future__ import annotations

import functools
import itertools
import json
import time as clock_time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar
from zoneinfo import ZoneInfo

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
    APPOINTMENT_SK,
    DOCTOR_SK,
    EVENT_SK,
    GUARD_SK,
    IDEMPOTENCY_SK,
    DynamoDBEventOutbox,
    DynamoDBRepositories,
    appointment_from_item,
    doctor_from_item,
    idempotency_from_item,
    owner_tag,
    request_from_item,
)
from adapters.aws.dynamodb.guards import is_guard, read_guard
from adapters.aws.dynamodb.keys import OUTBOX_PARTITION, PROCESSED_SK, REQUEST_SK
from adapters.aws.dynamodb.transaction import Role
from adapters.memory.store import (
    InMemoryBookingRequestQueue,
    InMemoryEventOutbox,
    InMemoryRepositories,
    MemoryStore,
)
from adapters.system import FixedClock
from domain.appointment import Appointment, Status
from domain.booking_request import BookingRequest, RequestStatus
from domain.commands import (
    BookAppointment,
    CancelAppointment,
    ChangeStatus,
    ListByCountryStatus,
    ListDoctorDay,
    RegisterDoctor,
    RescheduleAppointment,
)
from domain.countries import CountryCatalog
from domain.errors import CitasError, IdempotencyKeyReused, PatientDoubleBooked, SlotUnavailable
from domain.events import Event
from domain.pagination import PageTokens
from domain.use_cases import Clinic, ListResult
from domain.use_cases.requests import ProcessedRequest
from entrypoints.http_responses import booking_request_json
from ports.repositories import ClinicRepositories, EventOutbox
from tests.integration.aws_world import all_items, fresh_table, local_client
from tests.integration.histories import (
    DOCTORS,
    ID_EPOCH_MS,
    IDEMPOTENCY_KEYS,
    LIMA,
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

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

    from tests.support.dynamodb_local import DynamoDBLocal

T = TypeVar("T")

CLINICS = ("sol", "luna")
# The node bits of each clinic's ids; 0 is the node of the ids both clinics may share.
NODES = {"sol": 0x501, "luna": 0x1A7}

# (max_examples, stateful_step_count) per backend: DynamoDB Local stays under a minute on two
# cores; memory is cheap, so it explores more and longer histories.
BUDGET = {"memory": (40, 25), "dynamodb_local": (35, 20)}

clinics = st.sampled_from(CLINICS)
# Whose id a command names: mostly the acting clinic's own, now and then the other's.
whose = st.sampled_from(["own", "own", "own", "other"])


def counter_id(n: int, node: int) -> str:
    """The n-th id of a counter, shaped like a UUIDv7, with `node` in its random bits."""
    value = ((ID_EPOCH_MS + n) & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= (n & 0xFFF) << 64
    value |= 0b10 << 62
    value |= (node & 0x3FFFFF) << 40
    value |= n & ((1 << 40) - 1)
    return str(uuid.UUID(int=value))


class ClinicIds:
    """A clinic's counter ids; the one minted right after `share_next` has no node."""

    def __init__(self, clinic_id: str) -> None:
        self._node = NODES[clinic_id]
        self._share_next = False
        self.issued = 0

    def share_next(self, share: bool = True) -> None:
        """Mint the next id without the clinic's node (or stop doing so)."""
        self._share_next = share

    def new_id(self) -> str:
        """The next id: the clinic's own, or one the other clinic mints at the same count."""
        n, node = self.issued, 0 if self._share_next else self._node
        self.issued += 1
        self._share_next = False
        return counter_id(n, node)


class ScriptedIds:
    """Ids from a script (None: the clinic's own next id), then the clinic's own ids."""

    def __init__(self, clinic_id: str, script: Sequence[str | None]) -> None:
        self._node = NODES[clinic_id]
        self._script = list(script)
        self.issued = 0

    def new_id(self) -> str:
        """The next scripted id, or the clinic's own."""
        n = self.issued
        self.issued += 1
        scripted = self._script[n] if n < len(self._script) else None
        return scripted if scripted is not None else counter_id(n, self._node)


def test_the_two_clinics_ids_meet_only_where_they_are_shared() -> None:
    sol, luna = ClinicIds("sol"), ClinicIds("luna")
    own = [sol.new_id() for _ in range(300)], [luna.new_id() for _ in range(300)]
    assert not set(own[0]) & set(own[1]) and len(set(own[0])) == 300
    assert own[0] == sorted(own[0])
    sol.share_next()
    luna.share_next()
    assert sol.new_id() == luna.new_id() == counter_id(300, 0)
    assert sol.new_id() != luna.new_id()  # sharing lasts one id
    assert {uuid.UUID(i).version for i in own[0] + own[1]} == {7}


# Answers ------------------------------------------------------------------------------


def request_view(request: BookingRequest) -> tuple[object, ...]:
    """A booking request as plain data (its events are compared in the outbox)."""
    return (
        booking_request_json(request),
        request.clinic_id,
        request.country,
        request.command.to_dict(),
        request.created_at.isoformat(),
        request.updated_at.isoformat(),
    )


def comparable(outcome: object) -> object:
    """What must be equal between a clinic and its reference: plain data, errors by code."""
    if isinstance(outcome, CitasError):
        return ("error", outcome.code)
    if isinstance(outcome, Appointment):
        return outcome.snapshot()
    if isinstance(outcome, ListResult):
        # Tokens wrap each backend's own cursor: each side follows its own in `page_through`.
        return ([a.snapshot() for a in outcome.items], outcome.next_token is None)
    if isinstance(outcome, BookingRequest):
        return request_view(outcome)
    if isinstance(outcome, ProcessedRequest):
        return (request_view(outcome.request), outcome.processed_now)
    if isinstance(outcome, tuple):
        return tuple(comparable(part) for part in outcome)
    if isinstance(outcome, list):
        return [comparable(part) for part in outcome]
    return outcome


# What a backend holds of one clinic ----------------------------------------------------

# kind ("appointments", "cells", "idempotency", "requests", "doctors") -> key -> plain value
ClinicView = dict[str, dict[str, Any]]
VIEW_KINDS = ("appointments", "cells", "idempotency", "requests", "doctors")


def cell_text(kind: str, owner: str, cell: datetime) -> str:
    """A held time cell as `DOC|PAT#<doctor id or patient key>#<UTC cell>`."""
    return f"{kind}#{owner}#{cell.astimezone(UTC):%Y-%m-%dT%H:%MZ}"


def memory_view(store: MemoryStore, clinic_id: str) -> ClinicView:
    """Everything a memory store holds of one clinic, in the shape `table_views` gives too."""
    kinds = {"doctor": "DOC", "patient": "PAT"}
    return {
        "appointments": {
            i: a.snapshot() for (c, i), a in store.appointments.items() if c == clinic_id
        },
        # The table keeps a tag of the holder, not its id: compare what both can show.
        "cells": {
            cell_text(kinds[kind], owner, cell): owner_tag(holder)
            for (c, kind, owner, cell), holder in store.cells.items()
            if c == clinic_id
        },
        "idempotency": {
            k: (r.fingerprint, r.appointment_id)
            for (c, k), r in store.idempotency.items()
            if c == clinic_id
        },
        "requests": {i: request_view(r) for (c, i), r in store.requests.items() if c == clinic_id},
        "doctors": {i: d.snapshot() for (c, i), d in store.doctors.items() if c == clinic_id},
    }


def check_memory_shape(store: MemoryStore) -> None:
    """Every record sits under its own clinic's key, and every cell is held by its clinic."""
    for (c, i), a in store.appointments.items():
        assert (c, i) == (a.clinic_id, a.appointment_id), (c, i, a)
    for (c, i), d in store.doctors.items():
        assert (c, i) == (d.clinic_id, d.doctor_id), (c, i, d)
    for (c, i), r in store.requests.items():
        assert (c, i) == (r.clinic_id, r.request_id), (c, i, r)
    for (c, k), record in store.idempotency.items():
        # A key names a booking of its own clinic, never the other's.
        assert record.key == k and (c, record.appointment_id) in store.appointments
    for (c, kind, owner, cell), holder in store.cells.items():
        held = store.appointments.get((c, holder))
        assert held is not None and held.is_active, (c, kind, owner, cell, holder)
        assert owner == (held.doctor_id if kind == "doctor" else held.patient.key)
        assert cell in held.doctor_cells()
    assert {e.clinic_id for e in store.outbox.values()} <= set(CLINICS)
    assert set(store.processed) == set()
    assert {c for c, _ in store.appointments} | {c for c, _ in store.doctors} <= set(CLINICS)


def table_views(items: Sequence[Mapping[str, Any]]) -> dict[str, ClinicView]:
    """Each clinic's items of a Scan, in `memory_view`'s shape; asserts the table's key shape."""
    views: dict[str, ClinicView] = {c: {k: {} for k in VIEW_KINDS} for c in CLINICS}
    for item in items:
        pk, sk = str(item["pk"]), str(item["sk"])
        if pk.startswith("OUTBOX#"):
            # The deployment's own ledger: unprefixed, but each event names its clinic.
            assert sk == EVENT_SK and item["gsi1pk"] == OUTBOX_PARTITION, item
            assert item["clinic_id"] in CLINICS, item
            assert json.loads(str(item["envelope"]))["clinic_id"] == item["clinic_id"], item
            assert "gsi2pk" not in item, item
            continue
        if pk.startswith("DONE#"):
            assert sk == PROCESSED_SK, item
            continue
        clinic = pk.split("#", 1)[0]
        assert clinic in CLINICS, f"an item outside every clinic: {pk}"
        if "clinic_id" in item:
            assert item["clinic_id"] == clinic, item
        for index in ("gsi1pk", "gsi2pk"):
            if index in item:
                assert str(item[index]).startswith(f"{clinic}#"), item
        view = views[clinic]
        if sk == APPOINTMENT_SK:
            appointment = appointment_from_item(item)
            assert pk == f"{clinic}#APPT#{appointment.appointment_id}"
            view["appointments"][appointment.appointment_id] = appointment.snapshot()
        elif sk == GUARD_SK:
            assert is_guard(pk), pk
            role, owner, cells = read_guard(item)
            kind = "DOC" if role is Role.DOCTOR_GUARD else "PAT"
            for cell, tag in cells.items():
                view["cells"][cell_text(kind, owner, cell)] = tag
        elif sk == IDEMPOTENCY_SK:
            record = idempotency_from_item(item)
            assert pk == f"{clinic}#IDEM#{record.key}"
            view["idempotency"][record.key] = (record.fingerprint, record.appointment_id)
        elif sk == REQUEST_SK:
            request = request_from_item(item)
            view["requests"][request.request_id] = request_view(request)
        elif sk == DOCTOR_SK:
            doctor = doctor_from_item(item)
            view["doctors"][doctor.doctor_id] = doctor.snapshot()
        else:
            raise AssertionError(f"an item of no known kind: {pk} / {sk}")
    for clinic, view in views.items():
        # A key names a booking of its own clinic, never the other's.
        for key, (_, appointment_id) in view["idempotency"].items():
            assert appointment_id in view["appointments"], (clinic, key, appointment_id)
    return views


class SharedBackend:
    """The one store or table both clinics share, with test-only read-backs of it."""

    label: str
    repos: ClinicRepositories
    outbox: EventOutbox

    def views(self) -> dict[str, ClinicView]:
        """What the backend holds of each clinic; asserts that every key is a clinic's."""
        raise NotImplementedError

    def close(self) -> None:
        """Drop what the backend holds."""


class MemoryBackend(SharedBackend):
    """One `MemoryStore` for both clinics."""

    label = "memory"

    def __init__(self) -> None:
        self.store = MemoryStore()
        self.repos = InMemoryRepositories(self.store)
        self.outbox = InMemoryEventOutbox(self.store)

    def views(self) -> dict[str, ClinicView]:
        """Both clinics' parts of the store, after checking every key names its record's clinic."""
        check_memory_shape(self.store)
        return {c: memory_view(self.store, c) for c in CLINICS}


class TableBackend(SharedBackend):
    """One fresh DynamoDB Local table for both clinics."""

    label = "dynamodb_local"

    def __init__(self, client: DynamoDBClient) -> None:
        self.client = client
        self.table = fresh_table(client)
        self.repos = DynamoDBRepositories(self.table, client)
        self.outbox = DynamoDBEventOutbox(self.table, client, retry_delay=0.001)

    def views(self) -> dict[str, ClinicView]:
        """Both clinics' items of one test-only Scan, after checking every item's keys."""
        return table_views(all_items(self.client, self.table))

    def close(self) -> None:
        """Delete the table."""
        self.client.delete_table(TableName=self.table)


class Side:
    """One `Clinic` facade with the ids and the request queue that it alone uses."""

    def __init__(
        self,
        label: str,
        clinic_id: str,
        repos: ClinicRepositories,
        clock: FixedClock,
        tokens: PageTokens,
    ) -> None:
        self.label = label
        self.ids = ClinicIds(clinic_id)
        self.queue = InMemoryBookingRequestQueue()
        self.clinic = Clinic(
            repos.appointments(clinic_id),
            repos.doctors(clinic_id),
            repos.requests(clinic_id),
            self.queue,
            clock,
            self.ids,
            CountryCatalog(),
            tokens,
            clinic_id=clinic_id,
        )


class Twin:
    """One clinic twice: on the shared backend, and alone on a memory store of its own."""

    def __init__(
        self, clinic_id: str, shared: SharedBackend, clock: FixedClock, tokens: PageTokens
    ) -> None:
        self.clinic_id = clinic_id
        self.store = MemoryStore()
        self.outbox = InMemoryEventOutbox(self.store)
        self.shared = Side("shared", clinic_id, shared.repos, clock, tokens)
        self.reference = Side(
            "reference", clinic_id, InMemoryRepositories(self.store), clock, tokens
        )
        self.bookings: list[tuple[BookAppointment, str | None]] = []
        # The messages the clinic queued, as both of its sides queued them.
        self.messages: list[dict[str, Any]] = []

    def appointment(self, appointment_id: str) -> Appointment | None:
        """The reference's appointment of that id, if the clinic has one."""
        return self.store.appointments.get((self.clinic_id, appointment_id))

    def slot_of(self, doctor_id: str) -> int:
        """The doctor's slot length in this clinic (30 for an unknown doctor)."""
        doctor = self.store.doctors.get((self.clinic_id, doctor_id))
        return doctor.slot_minutes if doctor is not None else 30


def other(clinic_id: str) -> str:
    """The other clinic."""
    return CLINICS[1 - CLINICS.index(clinic_id)]


def overlapping(appointments: Sequence[Mapping[str, Any]]) -> bool:
    """Whether two of these snapshots overlap in time."""
    spans = sorted(
        (datetime.fromisoformat(a["start"]), datetime.fromisoformat(a["end"])) for a in appointments
    )
    return any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans))


def active_by_owner(view: ClinicView) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """A clinic's active appointments by ("doctor", id) and by ("phone", number)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for snapshot in view["appointments"].values():
        if Status(snapshot["status"]).is_active:
            groups["doctor", snapshot["doctor_id"]].append(snapshot)
            groups["phone", snapshot["patient"]["phone"]].append(snapshot)
    return groups


# The machine ---------------------------------------------------------------------------


class TwoClinicsMachine(RuleBasedStateMachine):
    """Two clinics on one backend, each checked against a reference where it is alone."""

    backend: ClassVar[str] = "memory"
    endpoint_url: ClassVar[str] = ""
    stats: ClassVar[Counter[str]] = Counter()
    _client: ClassVar[DynamoDBClient | None] = None

    # (clinic id, appointment id): every appointment either clinic booked.
    appointments = Bundle("appointments")

    @classmethod
    def shared_client(cls) -> DynamoDBClient:
        """One client for every history: building a boto3 client costs more than a table."""
        if cls._client is None:
            cls._client = local_client(cls.endpoint_url)
        return cls._client

    def __init__(self) -> None:
        super().__init__()
        self.shared: SharedBackend = (
            TableBackend(self.shared_client())
            if self.backend == "dynamodb_local"
            else MemoryBackend()
        )
        self.clock = FixedClock(START)
        # One key for the deployment, as bootstrap configures it; each side keeps its own tokens.
        tokens = PageTokens(b"two clinics, one page-token key")
        self.twins = {c: Twin(c, self.shared, self.clock, tokens) for c in CLINICS}
        self.stats["examples"] += 1

    def teardown(self) -> None:
        self.shared.close()

    # Running a command -----------------------------------------------------------------

    def run(
        self,
        clinic_id: str,
        name: str,
        action: Callable[[Side], T],
        *,
        share_first_id: bool = False,
    ) -> tuple[T | CitasError, T | CitasError]:
        """Run `action` on the clinic's shared side and its reference; fail unless alike."""
        twin = self.twins[clinic_id]
        self.stats["commands"] += 1
        self.stats[name] += 1
        outcomes = []
        for side in (twin.shared, twin.reference):
            side.ids.share_next(share_first_id)
            outcomes.append(outcome_of(functools.partial(action, side)))
            side.ids.share_next(False)  # a call that minted nothing must not pass it on
        shared, reference = outcomes
        assert comparable(shared) == comparable(reference), (
            f"{name} in {clinic_id}: on the shared {self.shared.label} backend it answered"
            f" {shared!r}, alone it answered {reference!r}"
        )
        if isinstance(shared, CitasError):
            self.stats[f"{name}: {shared.code}"] += 1
        return shared, reference

    def now(self) -> datetime:
        """The instant every facade reads (one clock for all four)."""
        return self.clock.now()

    def local_start(
        self, clinic_id: str, doctor_id: str, days: int, when: tuple[str, int]
    ) -> datetime:
        """A local start `days` ahead: the n-th am/pm slot of a weekday, or a raw wall time."""
        kind, minute = when
        zone = DOCTORS[doctor_id][1]
        day = self.now().astimezone(zone).date() + timedelta(days=days)
        if kind != "wall":
            opens = 9 * 60 if kind == "am" else 14 * 60
            minute = min(opens + minute * self.twins[clinic_id].slot_of(doctor_id), 21 * 60)
            while day.weekday() >= 5:
                day += timedelta(days=1)
        return datetime.combine(day, time(minute // 60, minute % 60), tzinfo=zone)

    def duration(self, clinic_id: str, doctor_id: str, slots: int) -> int:
        """`slots` of the doctor's slot length in that clinic; 0 asks for the longest, 240."""
        return 240 if slots == 0 else slots * self.twins[clinic_id].slot_of(doctor_id)

    def actor(self, owner: str, whose: str) -> str:
        """The clinic that acts on an id of `owner`: itself ("own") or the other."""
        return owner if whose == "own" else other(owner)

    def current(self, owner: str, actor: str, appointment_id: str) -> Appointment:
        """The appointment as the acting clinic has it, else as its owner has it."""
        found = self.twins[actor].appointment(appointment_id)
        return (
            found
            if found is not None
            else self.twins[owner].store.appointments[owner, appointment_id]
        )

    # Rules: doctors and a first week ----------------------------------------------------

    @initialize(
        target=appointments,
        plan=st.lists(
            st.tuples(
                st.sampled_from(["rosa", "matias"]),
                patients,
                st.integers(1, 3),
                st.tuples(st.sampled_from(["am", "pm"]), st.integers(0, 7)),
                st.integers(1, 2),
                st.sampled_from(IDEMPOTENCY_KEYS),
            ),
            min_size=2,
            max_size=6,
        ),
    )
    def book_the_same_first_week_in_both_clinics(
        self, plan: list[tuple[str, int, int, tuple[str, int], int, str | None]]
    ) -> object:
        # The same doctors (other names), then the same bookings with the same keys: both
        # clinics mint the same appointment ids, hold the same cells, store the same keys.
        for clinic_id in CLINICS:
            for doctor_id, slot in (("rosa", 30), ("matias", 20)):
                self.register(clinic_id, doctor_id, slot, OFFICE)
        booked = []
        for doctor_id, who, days, when, slots, key in plan:
            for clinic_id in CLINICS:
                start = self.local_start(clinic_id, doctor_id, days, when)
                minutes = self.duration(clinic_id, doctor_id, slots)
                command = BookAppointment(doctor_id, PATIENTS[who], start, minutes)
                booked.extend(self.try_booking(clinic_id, command, key, shared_id=True))
        return multiple(*booked)

    def register(self, clinic_id: str, doctor_id: str, slot: int, hours: Mapping[str, Any]) -> None:
        """Register or replace a doctor in one clinic (each clinic names its doctors its way)."""
        country = DOCTORS[doctor_id][0]
        name = f"Dr. {doctor_id.title()} de {clinic_id.title()}"
        self.run(
            clinic_id,
            "register_doctor",
            lambda s: s.clinic.register_doctor(
                RegisterDoctor(doctor_id, name, country, hours, slot_minutes=slot)
            ),
        )

    @rule(
        clinic_id=clinics,
        doctor_id=doctor_ids,
        slot=st.sampled_from([10, 15, 20, 30, 60]),
        long_days=st.booleans(),
    )
    def register_or_replace_a_doctor(
        self, clinic_id: str, doctor_id: str, slot: int, long_days: bool
    ) -> None:
        self.register(clinic_id, doctor_id, slot, LONG_DAYS if long_days else OFFICE)

    # Rules: booking --------------------------------------------------------------------

    @rule(
        target=appointments,
        clinic_id=clinics,
        doctor_id=registered_doctor_ids,
        who=patients,
        days=days_ahead,
        when=whens,
        slots=slot_counts,
        key=st.sampled_from(IDEMPOTENCY_KEYS),
        notes=st.sampled_from([None, "primera consulta"]),
        shared_id=st.booleans(),
    )
    def book(
        self,
        clinic_id: str,
        doctor_id: str,
        who: int,
        days: int,
        when: tuple[str, int],
        slots: int,
        key: str | None,
        notes: str | None,
        shared_id: bool,
    ) -> object:
        start = self.local_start(clinic_id, doctor_id, days, when)
        minutes = self.duration(clinic_id, doctor_id, slots) if slots != 1 else None
        command = BookAppointment(doctor_id, PATIENTS[who], start, minutes, notes)
        return multiple(*self.try_booking(clinic_id, command, key, shared_id))

    @precondition(lambda self: any(t.bookings for t in self.twins.values()))
    @rule(
        target=appointments,
        clinic_id=clinics,
        source=whose,
        nth=st.integers(0, 50),
        shared_id=st.booleans(),
    )
    def repeat_a_booking_of_either_clinic(
        self, clinic_id: str, source: str, nth: int, shared_id: bool
    ) -> object:
        # The other clinic's booking, key and all, is a new booking here, never its replay.
        bookings = (
            self.twins[self.actor(clinic_id, source)].bookings or self.twins[clinic_id].bookings
        )
        command, key = bookings[nth % len(bookings)]
        return multiple(*self.try_booking(clinic_id, command, key, shared_id))

    def try_booking(
        self, clinic_id: str, command: BookAppointment, key: str | None, shared_id: bool
    ) -> list[tuple[str, str]]:
        """Book on both sides; the new appointment, unless refused or a replay."""
        twin = self.twins[clinic_id]
        twin.bookings.append((command, key))
        known = {i for _, i in twin.store.appointments}
        booked, _ = self.run(
            clinic_id, "book", lambda s: s.clinic.book(command, key), share_first_id=shared_id
        )
        if isinstance(booked, CitasError) or booked.appointment_id in known:
            return []  # refused, or a replay of the key's first booking
        return [(clinic_id, booked.appointment_id)]

    @rule(
        target=appointments,
        clinic_id=clinics,
        doctor_id=registered_doctor_ids,
        who=patients,
        days=days_ahead,
        when=whens,
        shared_id=st.booleans(),
        work_now=st.booleans(),
        with_queued_copy=st.booleans(),
    )
    def request_a_booking(
        self,
        clinic_id: str,
        doctor_id: str,
        who: int,
        days: int,
        when: tuple[str, int],
        shared_id: bool,
        work_now: bool,
        with_queued_copy: bool,
    ) -> object:
        start = self.local_start(clinic_id, doctor_id, days, when)
        command = BookAppointment(doctor_id, PATIENTS[who], start)
        accepted, _ = self.run(
            clinic_id,
            "request_booking",
            lambda s: s.clinic.request_booking(command),
            share_first_id=shared_id,
        )
        if isinstance(accepted, CitasError):
            return multiple()
        twin = self.twins[clinic_id]
        bodies = [
            side.queue.receive(accepted.country, timeout=0)
            for side in (twin.shared, twin.reference)
        ]
        assert bodies[0] is not None and bodies[0] == bodies[1], bodies
        message = json.loads(bodies[0])
        twin.messages.append(message)
        # Half the time the worker books it at once, as it mostly does; else it waits.
        return self.work(clinic_id, message, with_queued_copy) if work_now else multiple()

    @precondition(lambda self: any(t.messages for t in self.twins.values()))
    @rule(
        target=appointments,
        owner=clinics,
        whose=st.sampled_from(["own", "other"]),
        nth=st.integers(0, 20),
        with_queued_copy=st.booleans(),
    )
    def work_a_queued_request(
        self, owner: str, whose: str, nth: int, with_queued_copy: bool
    ) -> object:
        # Again (a redelivery), late, or by the other clinic: its copy is refused, and its
        # bare id names nothing there (or that clinic's own request, when the ids met).
        messages = self.twins[owner].messages or self.twins[other(owner)].messages
        message = messages[nth % len(messages)]
        return self.work(self.actor(str(message["clinic_id"]), whose), message, with_queued_copy)

    def work(self, clinic_id: str, message: Mapping[str, Any], with_queued_copy: bool) -> object:
        """Handle a queued message in a clinic as its worker would; the appointment it made."""
        request_id = str(message["request_id"])
        known = {i for _, i in self.twins[clinic_id].store.appointments}
        done, _ = self.run(
            clinic_id,
            "handle_booking_request",
            lambda s: s.clinic.handle_booking_request(
                request_id, BookingRequest.from_message(message) if with_queued_copy else None
            ),
        )
        self.run(clinic_id, "booking_request", lambda s: s.clinic.booking_request(request_id))
        # The other clinic's worker, handed this message by mistake, must refuse it.
        refused, _ = self.run(
            other(str(message["clinic_id"])),
            "handle_booking_request",
            lambda s: s.clinic.handle_booking_request(
                request_id, BookingRequest.from_message(message)
            ),
        )
        assert comparable(refused) == ("error", "validation_error"), refused
        if isinstance(done, CitasError):
            return multiple()
        booked = done.request.appointment_id
        if booked is None or booked in known:
            return multiple()
        return (clinic_id, booked)

    # Rules: changes, by either clinic's ids ------------------------------------------------

    @rule(
        target_id=appointments,
        whose=whose,
        days=days_ahead,
        when=whens,
        slots=st.none() | slot_counts,
        if_match=st.booleans(),
    )
    def reschedule(
        self,
        target_id: tuple[str, str],
        whose: str,
        days: int,
        when: tuple[str, int],
        slots: int | None,
        if_match: bool,
    ) -> None:
        owner, appointment_id = target_id
        actor = self.actor(owner, whose)
        current = self.current(owner, actor, appointment_id)
        start = self.local_start(actor, current.doctor_id, days, when)
        minutes = None if slots is None else self.duration(actor, current.doctor_id, slots)
        version = current.version if if_match else None
        self.run(
            actor,
            "reschedule",
            lambda s: s.clinic.reschedule(
                RescheduleAppointment(appointment_id, start, minutes, version)
            ),
        )

    @rule(
        target_id=appointments,
        whose=whose,
        status=st.sampled_from(
            [Status.CONFIRMED, Status.CONFIRMED, Status.CANCELLED, Status.COMPLETED, Status.NO_SHOW]
        ),
        stale=st.booleans(),
    )
    def change_status(
        self, target_id: tuple[str, str], whose: str, status: Status, stale: bool
    ) -> None:
        owner, appointment_id = target_id
        actor = self.actor(owner, whose)
        # Now and then with an If-Match one version behind: a 412 wherever the id exists.
        version = self.current(owner, actor, appointment_id).version
        expected = version - 1 if stale and version > 1 else None
        self.run(
            actor,
            "change_status",
            lambda s: s.clinic.change_status(ChangeStatus(appointment_id, status, None, expected)),
        )

    @rule(target_id=appointments, whose=whose)
    def cancel(self, target_id: tuple[str, str], whose: str) -> None:
        owner, appointment_id = target_id
        self.run(
            self.actor(owner, whose),
            "cancel",
            lambda s: s.clinic.cancel(CancelAppointment(appointment_id)),
        )

    def ids_only_the_other_has(self, clinic_id: str) -> list[str]:
        """Appointment ids the other clinic has and this one has not."""
        theirs = {i for _, i in self.twins[other(clinic_id)].store.appointments}
        return sorted(theirs - {i for _, i in self.twins[clinic_id].store.appointments})

    @precondition(lambda self: any(self.ids_only_the_other_has(c) for c in CLINICS))
    @rule(
        clinic_id=clinics,
        nth=st.integers(0, 50),
        command=st.sampled_from(["get", "reschedule", "confirm", "cancel"]),
    )
    def name_an_id_only_the_other_clinic_has(self, clinic_id: str, nth: int, command: str) -> None:
        if not self.ids_only_the_other_has(clinic_id):
            clinic_id = other(clinic_id)
        ids = self.ids_only_the_other_has(clinic_id)
        appointment_id = ids[nth % len(ids)]
        later = self.now() + timedelta(days=1)
        actions: dict[str, Callable[[Side], object]] = {
            "get": lambda s: s.clinic.get(appointment_id),
            "reschedule": lambda s: s.clinic.reschedule(
                RescheduleAppointment(appointment_id, later)
            ),
            "confirm": lambda s: s.clinic.change_status(
                ChangeStatus(appointment_id, Status.CONFIRMED)
            ),
            "cancel": lambda s: s.clinic.cancel(CancelAppointment(appointment_id)),
        }
        answer, _ = self.run(
            clinic_id, f"{command} by an id only the other clinic has", actions[command]
        )
        # The reference never heard of the id: nothing but a 404 can be right.
        assert comparable(answer) == ("error", "not_found"), answer

    @rule(target_id=appointments, whose=whose)
    def get(self, target_id: tuple[str, str], whose: str) -> None:
        owner, appointment_id = target_id
        self.run(self.actor(owner, whose), "get", lambda s: s.clinic.get(appointment_id))

    # Rules: time -------------------------------------------------------------------------

    @rule(minutes=st.integers(1, 20 * 60))
    def advance_the_clock(self, minutes: int) -> None:
        self.clock.set(self.now() + timedelta(minutes=minutes))

    @rule(target_id=appointments, after_mark=st.integers(0, 7 * 60), clinic_id=clinics)
    def reach_a_reminder_mark_and_send_reminders(
        self, target_id: tuple[str, str], after_mark: int, clinic_id: str
    ) -> None:
        owner, appointment_id = target_id
        start = self.twins[owner].store.appointments[owner, appointment_id].start
        target = start - timedelta(hours=24) + timedelta(minutes=after_mark)
        if target > self.now():
            self.clock.set(target)
        self.send_reminders(clinic_id)

    @rule(clinic_id=clinics)
    def send_reminders(self, clinic_id: str) -> None:
        reminded, _ = self.run(clinic_id, "send_reminders", lambda s: s.clinic.run_cadence())
        if isinstance(reminded, list):
            self.stats["reminders sent"] += len(reminded)

    # Rules: reads ------------------------------------------------------------------------

    @rule(clinic_id=clinics, doctor_id=doctor_ids, days=st.integers(-1, 3), limit=st.integers(1, 3))
    def list_a_doctors_day(self, clinic_id: str, doctor_id: str, days: int, limit: int) -> None:
        day = self.now().astimezone(DOCTORS[doctor_id][1]).date() + timedelta(days=days)
        self.page_through(
            clinic_id,
            "list_doctor_day",
            lambda c, token: c.list_doctor_day(ListDoctorDay(doctor_id, day, limit, token)),
        )

    @rule(
        clinic_id=clinics,
        country=st.sampled_from(["PE", "PE", "CL", "CL", "AR"]),
        status=st.sampled_from(list(Status)),
        start_from=st.none() | st.integers(-24, 96),
        start_to=st.none() | st.integers(-24, 96),
        limit=st.integers(1, 3),
    )
    def list_a_country_status(
        self,
        clinic_id: str,
        country: str,
        status: Status,
        start_from: int | None,
        start_to: int | None,
        limit: int,
    ) -> None:
        low = None if start_from is None else self.now() + timedelta(hours=start_from)
        high = None if start_to is None else self.now() + timedelta(hours=start_to)
        self.page_through(
            clinic_id,
            "list_by_country_status",
            lambda c, token: c.list_by_country_status(
                ListByCountryStatus(country, status, low, high, limit, token)
            ),
        )

    def page_through(
        self, clinic_id: str, name: str, fetch: Callable[[Clinic, str | None], ListResult]
    ) -> None:
        """Follow each side's own tokens to the last page, comparing page by page."""
        tokens: dict[str, str | None] = {"shared": None, "reference": None}
        for _ in range(100):
            shared, reference = self.run(
                clinic_id, name, lambda s, t=tokens: fetch(s.clinic, t[s.label])
            )
            if isinstance(shared, CitasError) or isinstance(reference, CitasError):
                return
            self.stats[f"{name} pages"] += 1
            if shared.next_token is None:
                return
            tokens = {"shared": shared.next_token, "reference": reference.next_token}
        raise AssertionError("more than 100 pages")

    @rule(clinic_id=clinics, doctor_id=doctor_ids, days=st.integers(-1, 3))
    def availability(self, clinic_id: str, doctor_id: str, days: int) -> None:
        day = self.now().astimezone(DOCTORS[doctor_id][1]).date() + timedelta(days=days)
        self.run(clinic_id, "availability", lambda s: s.clinic.availability(doctor_id, day))

    # Invariants --------------------------------------------------------------------------

    @invariant()
    def each_clinic_holds_exactly_what_it_holds_alone(self) -> None:
        self.stats["checks"] += 1
        views = self.shared.views()  # asserts every key is one clinic's
        for clinic_id, twin in self.twins.items():
            assert twin.shared.ids.issued == twin.reference.ids.issued, clinic_id
            alone = memory_view(twin.store, clinic_id)
            for kind in VIEW_KINDS:
                assert views[clinic_id][kind] == alone[kind], f"{clinic_id}: {kind} differ"
            # The single-clinic invariant, on the shared backend: nobody is in two places.
            for owner, group in active_by_owner(views[clinic_id]).items():
                assert not overlapping(group), (clinic_id, owner, group)
        self.count_what_the_clinics_share(views)

    @invariant()
    def each_clinic_sees_only_its_own_events_in_the_shared_outbox(self) -> None:
        events: Sequence[Event] = self.shared.outbox.pending(1000)
        assert len({e.event_id for e in events}) == len(events)
        for clinic_id, twin in self.twins.items():
            mine = [e.to_envelope() for e in events if e.clinic_id == clinic_id]
            assert mine == [e.to_envelope() for e in twin.outbox.pending(1000)], clinic_id
        assert {e.clinic_id for e in events} <= set(CLINICS)

    @invariant()
    def neither_clinic_reads_the_ids_only_the_other_has(self) -> None:
        # A few GetItems a step: each clinic asks for the other's newest ids of its own.
        for clinic_id in CLINICS:
            for appointment_id in self.ids_only_the_other_has(clinic_id)[-2:]:
                answer, _ = self.run(
                    clinic_id,
                    "get by an id only the other clinic has",
                    lambda s, i=appointment_id: s.clinic.get(i),
                )
                assert comparable(answer) == ("error", "not_found"), answer

    def count_what_the_clinics_share(self, views: Mapping[str, ClinicView]) -> None:
        """Evidence the histories reach the hard cases: shared ids, keys and busy times."""
        sol, luna = views["sol"], views["luna"]
        for kind in ("appointments", "idempotency", "requests", "cells"):
            if set(sol[kind]) & set(luna[kind]):
                self.stats[f"steps with the same {kind} keys in both clinics"] += 1
        sol_active, luna_active = active_by_owner(sol), active_by_owner(luna)
        if any(
            overlapping(sol_active[owner] + luna_active[owner])
            for owner in set(sol_active) & set(luna_active)
        ):
            # The other clinic would have blocked this time, were it not isolated.
            self.stats["steps with the same doctor or phone busy at once in both"] += 1


BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("dynamodb_local", id="dynamodb_local", marks=pytest.mark.dynamodb_local),
]


# A failure is shrunk for minutes before it is reported: let it finish.
@pytest.mark.timeout(900)
@pytest.mark.parametrize("backend", BACKENDS)
def test_two_clinics_on_one_backend_answer_as_each_would_alone(
    backend: str, request: pytest.FixtureRequest
) -> None:
    TwoClinicsMachine.backend = backend
    TwoClinicsMachine._client = None
    if backend == "dynamodb_local":
        server: DynamoDBLocal = request.getfixturevalue("dynamodb_local")
        TwoClinicsMachine.endpoint_url = server.endpoint_url
    TwoClinicsMachine.stats.clear()
    examples, steps = BUDGET[backend]
    began = clock_time.perf_counter()
    run_state_machine_as_test(
        TwoClinicsMachine,
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    stats = TwoClinicsMachine.stats
    print(
        f"\ntwo clinics on {backend}: {stats['examples']} histories, {stats['checks']} checks,"
        f" {stats['commands']} commands in {clock_time.perf_counter() - began:.1f}s; "
        + ", ".join(f"{name}={n}" for name, n in sorted(stats.items()))
    )
    assert stats["examples"] >= examples // 2
    assert sum(n for name, n in stats.items() if "only the other clinic has: not_found" in name)
    # The machine must reach the cases isolation is about, or it proves little.
    for reached in (
        "steps with the same appointments keys in both clinics",
        "steps with the same idempotency keys in both clinics",
        "steps with the same cells keys in both clinics",
        "steps with the same doctor or phone busy at once in both",
        "handle_booking_request: validation_error",
    ):
        assert stats[reached] > 0, f"never reached: {reached}"


# Scripted cases, on both backends --------------------------------------------------------

WED = date(2026, 12, 2)


def at(day: date, hhmm: str, zone: ZoneInfo = LIMA) -> datetime:
    """An aware local time."""
    hours, minutes = map(int, hhmm.split(":"))
    return datetime.combine(day, time(hours, minutes), tzinfo=zone)


@pytest.fixture(params=BACKENDS)
def shared(request: pytest.FixtureRequest) -> Iterator[SharedBackend]:
    """A fresh shared backend: one memory store, or one table on the session's DynamoDB Local."""
    backend: SharedBackend
    if request.param == "dynamodb_local":
        server: DynamoDBLocal = request.getfixturevalue("dynamodb_local")
        backend = TableBackend(local_client(server.endpoint_url))
    else:
        backend = MemoryBackend()
    yield backend
    backend.close()


def open_clinic(
    shared: SharedBackend, clinic_id: str, clock: FixedClock, ids: ClinicIds | ScriptedIds
) -> Clinic:
    """A clinic's facade on the shared backend, with rosa and luz (both PE) registered."""
    repos = shared.repos
    clinic = Clinic(
        repos.appointments(clinic_id),
        repos.doctors(clinic_id),
        repos.requests(clinic_id),
        InMemoryBookingRequestQueue(),
        clock,
        ids,
        CountryCatalog(),
        clinic_id=clinic_id,
    )
    for doctor_id in ("rosa", "luz"):
        name = f"Dra. {doctor_id.title()} de {clinic_id.title()}"
        clinic.register_doctor(RegisterDoctor(doctor_id, name, "PE", OFFICE, slot_minutes=30))
    return clinic


def free_starts(clinic: Clinic, doctor_id: str, day: date) -> set[datetime]:
    """The starts of a doctor's free slots on a local date."""
    return {slot.start for slot in clinic.availability(doctor_id, day).slots}


def events_of(shared: SharedBackend, clinic_id: str) -> list[tuple[str, str | None]]:
    """(type, appointment id) of a clinic's pending events in the shared outbox, in order."""
    return [
        (e.type, e.appointment_id) for e in shared.outbox.pending(1000) if e.clinic_id == clinic_id
    ]


def test_same_doctor_phone_time_and_key_in_two_clinics_all_succeed(shared: SharedBackend) -> None:
    clock = FixedClock(START)
    sol = open_clinic(shared, "sol", clock, ClinicIds("sol"))
    luna = open_clinic(shared, "luna", clock, ClinicIds("luna"))
    ana, bruno = PATIENTS[0], PATIENTS[1]
    start = at(WED, "10:00")
    for_sol = BookAppointment("rosa", ana, start, notes="sol")
    for_luna = BookAppointment("rosa", ana, start, notes="luna")

    first = sol.book(for_sol, "clave-1")
    # The same doctor id, phone, time and key with another body: a fresh booking in luna,
    # neither blocked by sol's time nor taken for a reuse of sol's key.
    second = luna.book(for_luna, "clave-1")
    assert (first.clinic_id, second.clinic_id) == ("sol", "luna")
    assert first.status is second.status is Status.REQUESTED
    assert first.appointment_id != second.appointment_id

    # Each key replays its own clinic's booking, and is "reused" only by the other body.
    assert sol.book(for_sol, "clave-1").snapshot() == first.snapshot()
    assert luna.book(for_luna, "clave-1").snapshot() == second.snapshot()
    with pytest.raises(IdempotencyKeyReused):
        sol.book(for_luna, "clave-1")
    with pytest.raises(IdempotencyKeyReused):
        luna.book(for_sol, "clave-1")

    # Each clinic holds the time in its own right: its doctor and its patient are busy there.
    for clinic in (sol, luna):
        with pytest.raises(SlotUnavailable):
            clinic.book(BookAppointment("rosa", bruno, start))
        with pytest.raises(PatientDoubleBooked):
            clinic.book(BookAppointment("luz", ana, start))
        assert start not in free_starts(clinic, "rosa", WED)
    views = shared.views()
    # The same doctor's and patient's cells in both clinics, each held by its own booking.
    assert set(views["sol"]["cells"]) == set(views["luna"]["cells"]) != set()
    assert set(views["sol"]["cells"].values()) == {owner_tag(first.appointment_id)}
    assert set(views["luna"]["cells"].values()) == {owner_tag(second.appointment_id)}
    assert views["sol"]["idempotency"]["clave-1"][1] == first.appointment_id
    assert views["luna"]["idempotency"]["clave-1"][1] == second.appointment_id

    # Neither clinic lists, reads or changes the other's booking.
    day = ListDoctorDay("rosa", WED)
    assert [a.appointment_id for a in sol.list_doctor_day(day).items] == [first.appointment_id]
    assert [a.appointment_id for a in luna.list_doctor_day(day).items] == [second.appointment_id]
    requested = ListByCountryStatus("PE", Status.REQUESTED)
    assert [a.clinic_id for a in luna.list_by_country_status(requested).items] == ["luna"]
    for clinic, foreign in ((sol, second), (luna, first)):
        for attempt in (
            lambda c=clinic, f=foreign: c.get(f.appointment_id),
            lambda c=clinic, f=foreign: c.cancel(CancelAppointment(f.appointment_id)),
        ):
            assert comparable(outcome_of(attempt)) == ("error", "not_found")

    # Sol cancels: only sol's time is freed.
    sol.cancel(CancelAppointment(first.appointment_id))
    assert start in free_starts(sol, "rosa", WED)
    assert start not in free_starts(luna, "rosa", WED)
    assert luna.get(second.appointment_id).status is Status.REQUESTED
    with pytest.raises(SlotUnavailable):
        luna.book(BookAppointment("rosa", bruno, start))
    assert sol.book(BookAppointment("rosa", bruno, start)).clinic_id == "sol"
    assert events_of(shared, "luna") == [("AppointmentRequested", second.appointment_id)]
    assert [t for t, _ in events_of(shared, "sol")] == [
        "AppointmentRequested",
        "AppointmentCancelled",
        "AppointmentRequested",
    ]


def test_the_same_appointment_and_request_ids_in_two_clinics_stay_apart(
    shared: SharedBackend,
) -> None:
    clock = FixedClock(START)
    appointment_id, request_id, worker_booked = (counter_id(n, 0) for n in range(3))
    # Call order: book (appointment id, its event), request_booking (request id), the
    # worker's booking (appointment id, its event); None is the clinic's own id.
    script = [appointment_id, None, request_id, worker_booked, None]
    sol = open_clinic(shared, "sol", clock, ScriptedIds("sol", script))
    luna = open_clinic(shared, "luna", clock, ScriptedIds("luna", script))
    ana, bruno = PATIENTS[0], PATIENTS[1]
    start, later = at(WED, "10:00"), at(WED, "11:00")

    for clinic in (sol, luna):
        booked = clinic.book(BookAppointment("rosa", ana, start, notes=clinic.clinic_id))
        assert booked.appointment_id == appointment_id
        asked = clinic.request_booking(BookAppointment("luz", bruno, later))
        assert asked.request_id == request_id
        # The worker's key is `booking-request <request id>`: the same text in both clinics.
        done = clinic.handle_booking_request(request_id, asked)
        assert done.processed_now and done.request.appointment_id == worker_booked
    for clinic in (sol, luna):
        assert clinic.get(appointment_id).notes == clinic.clinic_id
        assert clinic.get(worker_booked).clinic_id == clinic.clinic_id
        assert clinic.booking_request(request_id).status is RequestStatus.BOOKED
    views = shared.views()
    assert set(views["sol"]["appointments"]) == set(views["luna"]["appointments"])
    assert set(views["sol"]["requests"]) == set(views["luna"]["requests"]) == {request_id}

    # Sol cancels its appointment of that id: luna's of the same id stays, and holds its time.
    assert sol.cancel(CancelAppointment(appointment_id)).status is Status.CANCELLED
    assert luna.get(appointment_id).status is Status.REQUESTED
    assert start in free_starts(sol, "rosa", WED)
    assert start not in free_starts(luna, "rosa", WED)
    with pytest.raises(SlotUnavailable):
        luna.book(BookAppointment("rosa", PATIENTS[2], start))
    assert sol.book(BookAppointment("rosa", PATIENTS[2], start)).clinic_id == "sol"
    views = shared.views()
    tag = owner_tag(appointment_id)
    assert tag not in views["sol"]["cells"].values()
    assert sum(held == tag for held in views["luna"]["cells"].values()) > 0
    # Luna moves its own: sol's cancelled one is untouched.
    luna.reschedule(RescheduleAppointment(appointment_id, at(WED, "15:00")))
    assert sol.get(appointment_id).status is Status.CANCELLED
    assert sol.get(appointment_id).start == start

    # One outbox, each event once, each naming its clinic: nothing of one reached the other.
    assert events_of(shared, "luna") == [
        ("AppointmentRequested", appointment_id),
        ("AppointmentRequested", worker_booked),
        ("AppointmentRescheduled", appointment_id),
    ]
    assert [t for t, _ in events_of(shared, "sol")] == [
        "AppointmentRequested",
        "AppointmentRequested",
        "AppointmentCancelled",
        "AppointmentRequested",
    ]
    event_ids = [e.event_id for e in shared.outbox.pending(1000)]
    assert len(set(event_ids)) == len(event_ids) == 7
