"""Contention: many clients booking into the same ten slots of one doctor on DynamoDB Local.

Each client is a thread with its own boto3 client and its own `Clinic` on the DynamoDB
adapters (the production client settings: 3 attempts, 2 s connect, 5 s read timeout). For a
fixed time every client either books a random slot with a random duration (30, 60 or 90 min,
so bookings overlap partially) for one of 40 patients, or cancels one of its own bookings
(half the time, when it has one), so the slots keep changing hands. Afterwards the table is
read back: double bookings (overlapping active appointments of the doctor or a patient) and
guard mismatches (a cell of a doctor's or a patient's day guard missing, foreign or orphan)
must be 0.

Every booking and cancel of the doctor's day updates the same guard item,
`<clinic>#DOCDAY#<doctor>#<day>`, so concurrent transactions cancel each other with
`TransactionConflict`; the adapter retries those (`TRANSACTION_RETRY`) and answers 503 when
the last attempt still conflicts. What that hot item costs is counted with a botocore
`after-call` hook on TransactWriteItems: every answer whose cancellation reasons include
`TransactionConflict` is one conflicted attempt (retried, or a 503 if it was the last).

Every booking's transaction also holds a ConditionCheck of the doctor's profile item (its
`schedule_version`, `adapters.aws.dynamodb.appointments.check_schedule`), so all bookings of
one doctor share that item too, whatever their days. What that check costs under contention
is measured side by side, in the same run, at 1, 8 and 32 clients, on two workloads:

- `shared_day`: the one above (ten slots of one day, 40 patients): the bookings share the
  day guard anyway;
- `own_days`: one doctor, each client books (and cancels) on a day of its own, for patients
  of its own, so the doctor's profile (the ConditionCheck) is the only item they share;

each WITH the check (the production code) and WITHOUT it: `check_schedule` replaced by a
no-op inside this benchmark only (restored afterwards), which is the transaction of the
design before doctors had schedules (time off, versions). The machine's load average is
recorded before and after every level.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from bench import audit as audit_mod
from bench import ddb as ddb_mod
from bench.common import FIRST_DAY, MORNING_HOURS, NOW, SLOT_MINUTES, Quick, local_start, log, phone

DOCTOR = "dra-contienda"
PATIENTS = 40
# `own_days`: each client's own patients (no patient guard is shared either).
PATIENTS_PER_CLIENT = 4
WORKLOADS = ("shared_day", "own_days")
VARIANTS = ("with_check", "without_check")
DURATIONS = (30, 60, 90)
CLIENT_CONFIG = {
    "retries": {"mode": "standard", "max_attempts": 3},
    "connect_timeout": 2,
    "read_timeout": 5,
    "max_pool_connections": 2,
}


class _Transactions:
    """Counts one client's TransactWriteItems answers: sent, conflicted, refused."""

    def __init__(self, client: Any) -> None:
        self.counts: Counter[str] = Counter()
        client.meta.events.register("after-call.dynamodb.TransactWriteItems", self._answer)

    def _answer(self, parsed: dict[str, Any], **_: Any) -> None:
        # One call per client thread: no lock needed. botocore's own retries of a call
        # would be one answer here, but a cancelled transaction is not one botocore retries.
        codes = {str(r.get("Code")) for r in parsed.get("CancellationReasons") or []}
        self.counts["sent"] += 1
        if "TransactionConflict" in codes:
            self.counts["conflicted"] += 1
        elif "ConditionalCheckFailed" in codes:
            self.counts["refused"] += 1


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


@contextlib.contextmanager
def without_schedule_check() -> Iterator[None]:
    """The pre-schedules transaction: no ConditionCheck of the doctor's profile (bench only)."""
    from adapters.aws.dynamodb import appointments

    saved = appointments.check_schedule

    def no_check(*_: Any, **__: Any) -> None:
        return None

    appointments.check_schedule = no_check
    try:
        yield
    finally:
        appointments.check_schedule = saved


def _level(
    endpoint_url: str,
    clients: int,
    seconds: float,
    seed: int,
    workload: str = "shared_day",
    variant: str = "with_check",
) -> dict[str, Any]:
    load_before = _load()
    if variant == "without_check":
        with without_schedule_check():
            result = _run_level(endpoint_url, clients, seconds, seed, workload)
    else:
        result = _run_level(endpoint_url, clients, seconds, seed, workload)
    return {
        "workload": workload,
        "variant": variant,
        **result,
        "load_average_before": load_before,
        "load_average_after": _load(),
    }


def _run_level(
    endpoint_url: str, clients: int, seconds: float, seed: int, workload: str
) -> dict[str, Any]:
    from domain.appointment import Patient
    from domain.commands import BookAppointment, CancelAppointment, RegisterDoctor
    from domain.errors import CitasError

    admin = ddb_mod.client(endpoint_url)
    table = ddb_mod.fresh_table(admin, "citas-contention")
    setup, _ = ddb_mod.clinic_on(admin, table)
    setup.register_doctor(
        RegisterDoctor(DOCTOR, "Dra. Contienda", "PE", MORNING_HOURS, None, SLOT_MINUTES)
    )
    session = boto3.session.Session()
    boto_clients = [
        session.client(
            "dynamodb",
            endpoint_url=endpoint_url,
            region_name=ddb_mod.REGION,
            aws_access_key_id="dummy",
            aws_secret_access_key="dummy",
            config=Config(**CLIENT_CONFIG),
        )
        for _ in range(clients)
    ]
    transactions = [_Transactions(c) for c in boto_clients]
    worlds = [ddb_mod.clinic_on(c, table)[0] for c in boto_clients]
    shared = [Patient(f"Paciente {n}", phone(900_000 + n)) for n in range(PATIENTS)]
    own_days = workload == "own_days"
    # Client i's day and patients: the shared ones, or (own_days) its own. Every day lies
    # within the default rules (no holiday, 90-day horizon) from FIRST_DAY on.
    days = [FIRST_DAY + dt.timedelta(days=i if own_days else 0) for i in range(clients)]
    patients_of = [
        [
            Patient(f"Paciente {i}-{k}", phone(800_000 + i * PATIENTS_PER_CLIENT + k))
            for k in range(PATIENTS_PER_CLIENT)
        ]
        if own_days
        else shared
        for i in range(clients)
    ]
    outcomes: list[Counter[str]] = [Counter() for _ in range(clients)]
    latencies: list[list[float]] = [[] for _ in range(clients)]
    start_gate = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def client_loop(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        clinic = worlds[index]
        day, patients = days[index], patients_of[index]
        mine: list[str] = []
        counts = outcomes[index]
        start_gate.wait()
        while time.monotonic() < stop_at[0]:
            if mine and rng.random() < 0.5:
                aid = mine.pop(rng.randrange(len(mine)))
                try:
                    clinic.cancel(CancelAppointment(aid))
                    counts["cancelled"] += 1
                except CitasError as e:
                    counts[f"cancel_{e.code}"] += 1
                continue
            minutes = rng.choice(DURATIONS)
            slot = rng.randrange(0, 10 - minutes // SLOT_MINUTES + 1)
            command = BookAppointment(DOCTOR, rng.choice(patients), local_start(day, slot), minutes)
            began = time.perf_counter()
            try:
                booked = clinic.book(command)
            except CitasError as e:
                counts[e.code] += 1
            except Exception as e:  # a bug or an unexpected AWS answer: counted, not hidden
                counts[f"error_{type(e).__name__}"] += 1
            else:
                counts["booked"] += 1
                mine.append(booked.appointment_id)
            latencies[index].append(time.perf_counter() - began)

    threads = [threading.Thread(target=client_loop, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    stop_at[0] = time.monotonic() + seconds
    began = time.monotonic()
    start_gate.wait()
    for t in threads:
        t.join(timeout=seconds + 60)
    elapsed = time.monotonic() - began
    total: Counter[str] = Counter()
    for c in outcomes:
        total.update(c)
    checked = audit_mod.audit(admin, table)
    all_latencies = sorted(x for per in latencies for x in per)
    attempts = sum(v for k, v in total.items() if not k.startswith("cancel"))
    conflicts = total["slot_unavailable"] + total["patient_double_booked"]
    sent: Counter[str] = Counter()
    for tx in transactions:
        sent.update(tx.counts)
    admin.delete_table(TableName=table)
    return {
        "clients": clients,
        "days": len(set(days)),
        "seconds": round(elapsed, 2),
        "outcomes": dict(total),
        "booking_attempts": attempts,
        "attempts_per_s": round(attempts / elapsed, 1),
        "bookings_per_s": round(total["booked"] / elapsed, 1),
        "conflicts_per_s": round(conflicts / elapsed, 1),
        "busy_503_per_s": round(total["temporarily_unavailable"] / elapsed, 2),
        "transactions": dict(sent),
        "transaction_conflicts_per_s": round(sent["conflicted"] / elapsed, 1),
        "conflicted_share": round(sent["conflicted"] / sent["sent"], 3) if sent["sent"] else None,
        "cancels_per_s": round(total["cancelled"] / elapsed, 1),
        "attempt_latency_p50_s": all_latencies[len(all_latencies) // 2] if all_latencies else None,
        "attempt_latency_p99_s": (
            all_latencies[int(len(all_latencies) * 0.99)] if all_latencies else None
        ),
        "audit": checked,
        "double_bookings": checked["double_bookings"],
    }


def _log(result: dict[str, Any]) -> None:
    log(
        f"contention {result['workload']} {result['variant']} {result['clients']}: "
        f"{result['bookings_per_s']} booked/s, {result['conflicts_per_s']} conflicts/s, "
        f"{result['busy_503_per_s']} busy/s, "
        f"{result['transaction_conflicts_per_s']} TransactionConflict/s "
        f"(share {result['conflicted_share']}), double bookings {result['double_bookings']}, "
        f"audit ok {result['audit']['ok']}, load {result['load_average_before']} -> "
        f"{result['load_average_after']}"
    )


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def _side_by_side(with_check: dict[str, Any], without: dict[str, Any]) -> dict[str, Any]:
    """One level of one workload: both variants' figures and with / without ratios."""
    keys = {
        "bookings_per_s": "bookings_per_s",
        "conflicted_share": "conflicted_share",
        "transaction_conflicts_per_s": "transaction_conflicts_per_s",
        "busy_503_per_s": "busy_503_per_s",
        "p50_s": "attempt_latency_p50_s",
        "p99_s": "attempt_latency_p99_s",
        "double_bookings": "double_bookings",
    }
    out: dict[str, Any] = {"clients": with_check["clients"]}
    for name, key in keys.items():
        out[name] = {"with_check": with_check[key], "without_check": without[key]}
    out["audit_ok"] = {
        "with_check": with_check["audit"]["ok"],
        "without_check": without["audit"]["ok"],
    }
    out["ratio_with_to_without"] = {
        name: _ratio(with_check[key], without[key])
        for name, key in keys.items()
        if name not in ("double_bookings", "busy_503_per_s")
    }
    return out


def run(q: Quick, results_dir: Path) -> dict[str, Any]:
    # One client first: DynamoDB Local's own pace without contention, to read the rest by.
    levels = q.pick([1, 8, 32], [1, 8])
    seconds = q.pick(10.0, 3.0)
    # The main workload (shared_day, production code) also at 128 clients, after the rest.
    extra_levels = q.pick([128], [32])
    local = ddb_mod.server()
    # Per workload and level, both variants one after the other (their order alternating by
    # level, so neither always runs on a warmer JVM or a calmer machine).
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        w: {v: [] for v in VARIANTS} for w in WORKLOADS
    }
    for workload in WORKLOADS:
        for n, clients in enumerate(levels):
            order = VARIANTS if n % 2 == 0 else VARIANTS[::-1]
            for variant in order:
                log(f"contention {workload} {variant}: {clients} clients for {seconds:.0f} s")
                result = _level(
                    local.endpoint_url,
                    clients,
                    seconds,
                    seed=n + 1,
                    workload=workload,
                    variant=variant,
                )
                _log(result)
                runs[workload][variant].append(result)
    out = list(runs["shared_day"]["with_check"])
    for n, clients in enumerate(extra_levels, start=len(levels)):
        log(f"contention shared_day with_check: {clients} clients for {seconds:.0f} s")
        result = _level(local.endpoint_url, clients, seconds, seed=n + 1)
        _log(result)
        out.append(result)
    comparison = {
        "levels": levels,
        "seconds_per_level": seconds,
        "what": {
            "shared_day": "ten slots of one day of one doctor, 40 shared patients: the "
            "bookings share the doctor's day guard (and patients' guards) anyway",
            "own_days": f"one doctor, each client on a day of its own with "
            f"{PATIENTS_PER_CLIENT} patients of its own: the doctor's profile item (the "
            "ConditionCheck of its schedule version) is the only item the bookings share",
        },
        "variants": {
            "with_check": "the production transaction: ConditionCheck of the doctor's "
            "`schedule_version` in every booking and move",
            "without_check": "the pre-schedules design: `check_schedule` patched to a no-op "
            "inside this benchmark only (restored afterwards); not a configuration of citas",
        },
        "runs": runs,
        "side_by_side": {
            w: [
                _side_by_side(a, b)
                for a, b in zip(runs[w]["with_check"], runs[w]["without_check"], strict=True)
            ]
            for w in WORKLOADS
        },
    }
    checked = out[len(levels) :] + [r for w in runs.values() for v in w.values() for r in v]
    with_check = out[len(levels) :] + [r for w in runs.values() for r in w["with_check"]]
    return {
        "doctor_slots": 10,
        "day": FIRST_DAY.isoformat(),
        "now": NOW.isoformat(),
        "seconds_per_level": seconds,
        "levels": out,
        "schedule_check": comparison,
        "client_config": CLIENT_CONFIG,
        "note": (
            "throughput is DynamoDB Local's (one JVM on this machine, transactions that touch "
            "the same items wait for each other), not AWS's; 503s are the adapter's answer "
            "when a call times out (5 s read timeout, 3 attempts) or stays in conflict; "
            "TransactionConflict counts every transaction attempt cancelled by a concurrent "
            "one on a shared item (a day guard, or the doctor's profile that every booking's "
            "ConditionCheck names). DynamoDB Local does not cancel such transactions: it makes "
            "them wait for each other, so here a shared item costs throughput and latency and "
            "the TransactionConflict share stays 0; AWS cancels a transaction whose item "
            "(ConditionCheck items included) is part of another ongoing one with "
            "TransactionConflict (Developer Guide, 'Transaction conflict handling in "
            "DynamoDB'), which the adapter retries (5 attempts) and then answers 503"
        ),
        "target": {
            "what": "double bookings and guard mismatches found by the read-back",
            "double_bookings": sum(r["double_bookings"] for r in with_check),
            "double_bookings_without_check": sum(
                r["double_bookings"] for w in runs.values() for r in w["without_check"]
            ),
            "met": all(r["audit"]["ok"] for r in checked),
        },
    }
