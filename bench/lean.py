"""Lean booking: citas's booking, refusal and reschedule against the floor, in one run.

The floor is the least any booking can do on DynamoDB: two plain conditional PutItems, a
small slot-lock item and then the appointment item, each on `attribute_not_exists(pk)` (a
naive peer: no transaction, no patient check, no event). Its items are citas's own: the
appointment item is `appointment_to_item` of a real appointment (same attributes, same
size, index keys included so the table's GSIs are written as for citas), serialized before
the clock starts, so the floor is a strict lower bound of the wire work.

Against it, on the same DynamoDB Local, the same client and the same fresh table:

- `book`: `Clinic.book`: one TransactWriteItems of the appointment, the ConditionCheck of
  the doctor's schedule version, the doctor's and the patient's day guards and the outbox
  event (the container keeps the doctor's schedule: only a round's first booking of a
  doctor reads its profile first, a GetItem);
- `book, transaction only`: `DynamoDBAppointmentRepository.add` of an appointment built
  before the clock starts: the transaction and the adapter's work around it (building the
  items, reading a refusal), without the domain's rules and the schedule cache. The adapter's
  own entry point is timed rather than the bare call (a botocore hook) because building
  the transaction is part of what citas pays for every booking;
- `refused book`: `Clinic.book` of a slot another patient holds; `SlotUnavailable` is
  read from the transaction's cancellation reasons, nothing is read again;
- `reschedule`: `Clinic.reschedule` to the next free slot of the same day, same length.

The machine is noisy, so the five are interleaved: each iteration runs all of them once, in
an order that rotates by one every iteration (no operation always follows the same one);
three rounds in the full run, each on new doctors. Every booking goes to a free slot of a
doctor with ten 30-minute slots a day, a new day every ten bookings, so the guard items
grow as on a real day. Latencies are wall time around the call; round trips are counted
with botocore's `before-call` hook (once per API call), and the items of each
TransactWriteItems from its parameters.

Request units are not DynamoDB Local's (wrong for transactions): they are computed from the
sizes of the items each call reads and writes with AWS's formulas (`bench.cost.Meter`), on a
second client and table so that the metering reads never touch the timed calls. A refused
transaction is charged as a write of the stored items it named (conditional writes that
fail are charged on AWS); that is an assumption of this benchmark, not a measured figure.
"""

from __future__ import annotations

import datetime as dt
import gc
import time
from collections import Counter
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from bench import cost as cost_mod
from bench import ddb as ddb_mod
from bench.common import (
    EVERY_DAY,
    FIRST_DAY,
    MORNING_HOURS,
    SLOT_MINUTES,
    SLOTS_PER_DAY,
    Quick,
    local_start,
    log,
    phone,
    ratio,
    summary,
)

TARGET_RATIO = 1.5
TARGET_WRU = 10
OPERATIONS = ("floor", "book", "book, transaction only", "refused book", "reschedule")
# 07:00-19:00 in Lima is 12:00-24:00 UTC: one guard day (from 06:00 UTC), so eight booked
# hours share one guard.
LONG_HOURS = {d: [["07:00", "19:00"]] for d in EVERY_DAY}
# The days each round books into start this far apart, so rounds never share a day. A round
# books at most 80 days ahead of its first (the reschedules: five a day), and every booking
# must lie within the doctors' horizon (`HORIZON_DAYS`) of the bench's fixed NOW.
ROUND_DAYS = 85
# The doctors of this family book up to a year ahead, every day of the week, national holidays
# included: the defaults (90 days, no bookings on holidays) would refuse most rounds.
HORIZON_DAYS = 365
# The busy doctor-day of the request units, this many days after its repetition's day.
BUSY_DAY_OFFSET = 100


def rotation(i: int, names: Sequence[str] = OPERATIONS) -> list[str]:
    """The order of iteration `i`: `names` rotated by `i`, so positions even out."""
    k = i % len(names)
    return [*names[k:], *names[:k]]


def slot_of(n: int, first_day: dt.date) -> tuple[dt.date, int]:
    """Booking number `n` of a doctor: ten slots a day, a new day every ten bookings."""
    return first_day + dt.timedelta(days=n // SLOTS_PER_DAY), n % SLOTS_PER_DAY


def lock_item(doctor_id: str, start: dt.datetime, appointment_id: str) -> dict[str, Any]:
    """The floor's slot lock: one small item per doctor and start, naming its appointment."""
    at = start.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%MZ")
    return {
        "pk": {"S": f"LOCK#{doctor_id}#{at}"},
        "sk": {"S": "LOCK"},
        "appointment_id": {"S": appointment_id},
    }


def floor_book(client: Any, table: str, lock: dict[str, Any], item: dict[str, Any]) -> None:
    """The floor: two conditional PutItems, the slot lock first, then the appointment."""
    client.put_item(TableName=table, Item=lock, ConditionExpression="attribute_not_exists(pk)")
    client.put_item(TableName=table, Item=item, ConditionExpression="attribute_not_exists(pk)")


class _World:
    """The timed client, its clinic and repository, and fresh patients and doctors."""

    def __init__(self, endpoint_url: str) -> None:
        from adapters.aws.dynamodb import DynamoDBAppointmentRepository

        self.client = ddb_mod.client(endpoint_url)
        self.table = ddb_mod.fresh_table(self.client, "citas-lean")
        self.clinic, self.outbox = ddb_mod.clinic_on(self.client, self.table)
        self.repository = DynamoDBAppointmentRepository(self.table, self.client, clinic_id="demo")
        self.patients = 0

    def patient(self) -> Any:
        """A patient never seen before (a new phone)."""
        from domain.appointment import Patient

        self.patients += 1
        return Patient(f"Paciente {self.patients}", phone(self.patients))

    def doctor(self, doctor_id: str, hours: dict[str, list[list[str]]] = MORNING_HOURS) -> Any:
        """Register `doctor_id` (ten 30-minute slots a day by default); its stored `Schedule`."""
        from domain.commands import RegisterDoctor

        self.clinic.register_doctor(
            RegisterDoctor(
                doctor_id,
                f"Dra. {doctor_id}",
                "PE",
                hours,
                None,
                SLOT_MINUTES,
                booking_horizon_days=HORIZON_DAYS,
                works_on_holidays=True,
            )
        )
        # Profile, version and time off as a booking reads them (one GetItem, untimed).
        schedule = self.clinic.doctors.schedule(doctor_id, self.clinic.clock.now())
        if schedule is None:
            raise RuntimeError(f"doctor {doctor_id} was not stored")
        return schedule

    def appointment(self, schedule: Any, start: dt.datetime) -> Any:
        """A new appointment as `Clinic.book` would build it (rules of `schedule`), not stored."""
        from domain.appointment import Appointment
        from domain.rules import Rules

        ids = self.clinic.ids
        return Appointment.request(
            appointment_id=ids.new_id(),
            rules=Rules(schedule, self.clinic.clock.now()),
            patient=self.patient(),
            start=start,
            duration_minutes=SLOT_MINUTES,
            notes=None,
            event_id=ids.new_id(),
        )


class _Round:
    """The prepared arguments of one round: every call's items and commands, made untimed."""

    def __init__(self, world: _World, number: int, n: int, refuse_day: dt.date) -> None:
        from adapters.aws.dynamodb.items import appointment_to_item, attribute_values
        from domain.commands import BookAppointment, RescheduleAppointment

        first = FIRST_DAY + dt.timedelta(days=ROUND_DAYS * number)
        floor_doctor = world.doctor(f"lean-floor-{number}")
        book_doctor = f"lean-book-{number}"
        world.doctor(book_doctor)
        self.tx_schedule = world.doctor(f"lean-tx-{number}")
        move_doctor = f"lean-move-{number}"
        world.doctor(move_doctor)
        self.floor: list[tuple[dict[str, Any], dict[str, Any]]] = []
        self.book: list[BookAppointment] = []
        self.transaction: list[Any] = []  # Appointment objects, built but not stored
        self.refused: list[BookAppointment] = []
        self.move: list[RescheduleAppointment] = []
        for i in range(n):
            day, slot = slot_of(i, first)
            appointment = world.appointment(floor_doctor, local_start(day, slot))
            self.floor.append(
                (
                    lock_item(
                        floor_doctor.doctor.doctor_id,
                        appointment.start,
                        appointment.appointment_id,
                    ),
                    attribute_values(appointment_to_item(appointment)),
                )
            )
            self.book.append(BookAppointment(book_doctor, world.patient(), local_start(day, slot)))
            self.transaction.append(world.appointment(self.tx_schedule, local_start(day, slot)))
            self.refused.append(
                BookAppointment("lean-refuse", world.patient(), local_start(refuse_day, slot))
            )
        # Reschedules: five appointments a day on the even slots, each moved to the odd slot
        # after it (same day, same length, a free slot). Booked before the round, untimed.
        for i in range(n):
            day, even = first + dt.timedelta(days=i // 5), 2 * (i % 5)
            booked = world.clinic.book(
                BookAppointment(move_doctor, world.patient(), local_start(day, even))
            )
            self.move.append(
                RescheduleAppointment(booked.appointment_id, local_start(day, even + 1))
            )


def _time_round(
    world: _World, prepared: _Round, n: int, calls: ddb_mod.Calls
) -> dict[str, dict[str, Any]]:
    """Run the five operations n times, interleaved; latencies, round trips and items."""
    from domain.errors import SlotUnavailable

    client, table, clinic, repository = world.client, world.table, world.clinic, world.repository

    def expect_refusal(i: int) -> bool:
        try:
            clinic.book(prepared.refused[i])
        except SlotUnavailable:
            return True
        return False

    actions: dict[str, Callable[[int], Any]] = {
        "floor": lambda i: floor_book(client, table, *prepared.floor[i]),
        "book": lambda i: clinic.book(prepared.book[i]),
        "book, transaction only": lambda i: repository.add(
            prepared.transaction[i], None, prepared.tx_schedule
        ),
        "refused book": expect_refusal,
        "reschedule": lambda i: clinic.reschedule(prepared.move[i]),
    }
    out: dict[str, dict[str, Any]] = {
        name: {"latency_s": [], "round_trips": Counter(), "calls": Counter(), "items": Counter()}
        for name in OPERATIONS
    }
    unexpected: Counter[str] = Counter()
    clock = time.perf_counter_ns
    gc.collect()
    for i in range(n):
        for name in rotation(i):
            calls.take()
            began = clock()
            try:
                answer = actions[name](i)
            except Exception as error:  # counted and shown, never hidden
                unexpected[f"{name}: {type(error).__name__}"] += 1
                answer = None
            elapsed = (clock() - began) / 1e9
            if name == "refused book" and answer is not True:
                unexpected[f"{name}: not refused"] += 1
            counts, requests, _ = calls.take()
            record = out[name]
            record["latency_s"].append(elapsed)
            record["round_trips"][sum(counts.values())] += 1
            record["calls"][" + ".join(f"{v}x {k}" for k, v in sorted(counts.items()))] += 1
            for operation, params in requests:
                if operation == "TransactWriteItems":
                    record["items"][len(params["TransactItems"])] += 1
    for name, record in out.items():
        mine = {k: v for k, v in unexpected.items() if k.split(":", 1)[0] == name}
        record["unexpected"] = sum(mine.values())
        record["unexpected_reasons"] = mine
    return out


def _latencies(rounds: list[dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """Per operation: pooled percentiles, per-round p50/p95, ratios to the floor, calls."""
    pooled = {
        name: summary([x for r in rounds for x in r[name]["latency_s"]]) for name in OPERATIONS
    }
    floor = pooled["floor"]
    per_round = [
        {name: summary(r[name]["latency_s"], (50, 95)) for name in OPERATIONS} for r in rounds
    ]
    out: dict[str, Any] = {}
    for name in OPERATIONS:
        round_trips: Counter[int] = Counter()
        calls: Counter[str] = Counter()
        items: Counter[int] = Counter()
        reasons: Counter[str] = Counter()
        for r in rounds:
            round_trips.update(r[name]["round_trips"])
            calls.update(r[name]["calls"])
            items.update(r[name]["items"])
            reasons.update(r[name].get("unexpected_reasons", {}))
        s = pooled[name]
        out[name] = {
            "latency_s": s,
            "ratio_to_floor": {
                "p50": ratio(s["p50"], floor["p50"]),
                "p95": ratio(s["p95"], floor["p95"]),
            },
            "per_round": [
                {
                    "p50_s": p[name]["p50"],
                    "p95_s": p[name]["p95"],
                    "ratio_p50": ratio(p[name]["p50"], p["floor"]["p50"]),
                }
                for p in per_round
            ],
            "round_trips": {str(k): v for k, v in sorted(round_trips.items())},
            "calls": dict(calls.most_common()),
            "items_per_transaction": {str(k): v for k, v in sorted(items.items())},
            "unexpected": sum(r[name]["unexpected"] for r in rounds),
            "unexpected_reasons": dict(reasons),
        }
    return out


def _guard_bytes(shadow: Any, table: str, pk: str) -> int:
    """The size (AWS rules) of one guard item as stored now; 0 when there is none."""
    from adapters.aws.dynamodb.guards import GUARD_SK

    found = shadow.get_item(
        TableName=table, Key={"pk": {"S": pk}, "sk": {"S": GUARD_SK}}, ConsistentRead=True
    )
    return cost_mod.item_size(found.get("Item"))


def request_units(q: Quick, endpoint_url: str) -> dict[str, Any]:
    """Round trips, items written and WRU/RRU of each write, from item sizes (AWS rules)."""
    from adapters.aws.dynamodb.guards import doctor_guard_pk
    from adapters.aws.resources import load_table_spec
    from domain.appointment import Status
    from domain.commands import (
        BookAppointment,
        CancelAppointment,
        ChangeStatus,
        RescheduleAppointment,
    )
    from domain.errors import SlotUnavailable

    repeats = q.pick(3, 1)
    world = _World(endpoint_url)
    shadow = ddb_mod.client(endpoint_url)
    spec = load_table_spec()
    gsis = [(i.name, i.hash_key, i.range_key or "") for i in spec.global_secondary_indexes]
    meter = cost_mod.Meter(world.client, shadow, world.table, gsis)
    clinic = world.clinic
    world.doctor("lean-units")
    world.doctor("lean-busy", LONG_HOURS)
    samples: dict[str, list[dict[str, Any]]] = {}

    def sample(name: str, action: Callable[[], Any], guard: tuple[str, dt.datetime]) -> Any:
        meter.reset()
        result = action()
        measured = meter.measure()
        doctor_id, start = guard
        measured["doctor_guard_bytes_after"] = _guard_bytes(
            shadow,
            world.table,
            doctor_guard_pk("demo", doctor_id, start.astimezone(dt.UTC).date()),
        )
        samples.setdefault(name, []).append(measured)
        return result

    def refused(start: dt.datetime) -> bool:
        try:
            clinic.book(BookAppointment("lean-units", world.patient(), start))
        except SlotUnavailable:
            return True
        return False

    for r in range(repeats):
        day = FIRST_DAY + dt.timedelta(days=3 * r)
        other, long_day = day + dt.timedelta(days=1), day + dt.timedelta(days=2)
        at = {slot: local_start(day, slot) for slot in range(SLOTS_PER_DAY)}
        long_start, other_start = local_start(long_day, 0), local_start(other, 0)
        booked = sample(
            "book 30 min",
            partial(clinic.book, BookAppointment("lean-units", world.patient(), at[0])),
            ("lean-units", at[0]),
        )
        sample(
            "book 30 min (Idempotency-Key)",
            partial(
                clinic.book,
                BookAppointment("lean-units", world.patient(), at[2]),
                idempotency_key=f"lean-{r}",
            ),
            ("lean-units", at[2]),
        )
        sample(
            "book 240 min",
            partial(clinic.book, BookAppointment("lean-units", world.patient(), long_start, 240)),
            ("lean-units", long_start),
        )
        if not sample("refused book (slot taken)", partial(refused, at[0]), ("lean-units", at[0])):
            raise RuntimeError("the refused booking was not refused")
        aid = booked.appointment_id
        sample(
            "reschedule, same day",
            partial(clinic.reschedule, RescheduleAppointment(aid, at[5])),
            ("lean-units", at[5]),
        )
        sample(
            "reschedule, another day",
            partial(clinic.reschedule, RescheduleAppointment(aid, other_start)),
            ("lean-units", other_start),
        )
        sample(
            "confirm",
            partial(clinic.change_status, ChangeStatus(aid, Status.CONFIRMED)),
            ("lean-units", other_start),
        )
        sample(
            "cancel",
            partial(clinic.cancel, CancelAppointment(aid)),
            ("lean-units", other_start),
        )
        # A busy doctor-day: 07:00-15:00 (eight hours, 96 cells) booked, then 15:00-15:30.
        busy_day = day + dt.timedelta(days=BUSY_DAY_OFFSET)
        for hour in (7, 11):
            start = dt.datetime.combine(busy_day, dt.time(hour), tzinfo=at[0].tzinfo)
            clinic.book(BookAppointment("lean-busy", world.patient(), start, 240))
        late = dt.datetime.combine(busy_day, dt.time(15), tzinfo=at[0].tzinfo)
        sample(
            "book 30 min, busy doctor-day (8 h booked)",
            partial(clinic.book, BookAppointment("lean-busy", world.patient(), late)),
            ("lean-busy", late),
        )
    operations: dict[str, Any] = {}
    for name, values in samples.items():
        first = values[0]
        same = all(
            (v["round_trips"], v["wru"], v["rru"], v["items_written"])
            == (first["round_trips"], first["wru"], first["rru"], first["items_written"])
            for v in values
        )
        operations[name] = {**first, "samples": len(values), "all_samples_equal": same}
    sizes = cost_mod.item_sizes(shadow, world.table)
    shadow.delete_table(TableName=world.table)  # the metered client would add its options
    return {"operations": operations, "item_sizes_bytes": sizes}


def run(q: Quick, results_dir: Path) -> dict[str, Any]:
    """The lean family: interleaved latencies against the floor, then request units."""
    from domain.commands import BookAppointment

    n = q.pick(400, 40)
    rounds = q.pick(3, 1)
    warm_up = q.pick(50, 10)
    local = ddb_mod.server()
    world = _World(local.endpoint_url)
    calls = ddb_mod.Calls(world.client, consumed_capacity=False)
    # The slot every refused booking asks for is held: one full day of another doctor.
    world.doctor("lean-refuse")
    refuse_day = FIRST_DAY
    for slot in range(SLOTS_PER_DAY):
        world.clinic.book(
            BookAppointment("lean-refuse", world.patient(), local_start(refuse_day, slot))
        )
    log(f"lean: table {world.table}, warm-up of {warm_up}, {rounds} rounds of {n} each")
    # Round 0 warms this client's connection and the code paths; it is not kept.
    _time_round(world, _Round(world, 0, warm_up, refuse_day), warm_up, calls)
    timed = []
    for number in range(1, rounds + 1):
        prepared = _Round(world, number, n, refuse_day)
        timed.append(_time_round(world, prepared, n, calls))
        p50 = {name: timed[-1][name]["latency_s"] for name in ("floor", "book")}
        log(
            f"lean round {number}: floor p50 "
            f"{summary(p50['floor'], (50,))['p50'] * 1000:.2f} ms, book p50 "
            f"{summary(p50['book'], (50,))['p50'] * 1000:.2f} ms"
        )
    latency = _latencies(timed)
    world.client.delete_table(TableName=world.table)
    units = request_units(q, local.endpoint_url)
    book_ratio = latency["book"]["ratio_to_floor"]["p50"]
    book_wru = units["operations"]["book 30 min"]["wru_table"]
    unexpected = sum(o["unexpected"] for o in latency.values())
    for name, o in latency.items():
        log(
            f"lean {name}: p50 {o['latency_s']['p50'] * 1000:.2f} ms, "
            f"p95 {o['latency_s']['p95'] * 1000:.2f} ms, x floor {o['ratio_to_floor']['p50']}"
        )
    return {
        "calls_per_operation": n * rounds,
        "rounds": rounds,
        "warm_up_calls": warm_up,
        "operations": latency,
        "request_units": units,
        "notes": [
            "latencies are DynamoDB Local's (one JVM on this machine), not AWS's; the ratios "
            "compare operations measured side by side in the same run",
            "the floor's items are serialized before the clock starts; citas's are built "
            "inside the timed call, as they are on every request",
            "WRU and RRU follow AWS's formulas from item sizes (bench/cost.py); "
            "a refused transaction is charged as a write of the items it named",
        ],
        "target": {
            "what": (
                f"book p50 within {TARGET_RATIO}x of the floor; 30-min booking <= "
                f"{TARGET_WRU} WRU on the table"
            ),
            "max_ratio": TARGET_RATIO,
            "max_wru_table": TARGET_WRU,
            "book_p50_ratio": book_ratio,
            "book_wru_table": book_wru,
            "unexpected_outcomes": unexpected,
            "met": bool(
                book_ratio is not None
                and book_ratio <= TARGET_RATIO
                and book_wru <= TARGET_WRU
                and unexpected == 0
            ),
        },
    }
