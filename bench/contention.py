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
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from bench import audit as audit_mod
from bench import ddb as ddb_mod
from bench.common import FIRST_DAY, MORNING_HOURS, NOW, SLOT_MINUTES, Quick, local_start, log, phone

DOCTOR = "dra-contienda"
PATIENTS = 40
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


def _level(endpoint_url: str, clients: int, seconds: float, seed: int) -> dict[str, Any]:
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
    patients = [Patient(f"Paciente {n}", phone(900_000 + n)) for n in range(PATIENTS)]
    outcomes: list[Counter[str]] = [Counter() for _ in range(clients)]
    latencies: list[list[float]] = [[] for _ in range(clients)]
    start_gate = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def client_loop(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        clinic = worlds[index]
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
            command = BookAppointment(
                DOCTOR, rng.choice(patients), local_start(FIRST_DAY, slot), minutes
            )
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
    for t in transactions:
        sent.update(t.counts)
    admin.delete_table(TableName=table)
    return {
        "clients": clients,
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


def run(q: Quick, results_dir: Path) -> dict[str, Any]:
    # One client first: DynamoDB Local's own pace without contention, to read the rest by.
    levels = q.pick([1, 8, 32, 128], [1, 8, 32])
    seconds = q.pick(20.0, 3.0)
    local = ddb_mod.server()
    out = []
    for n, clients in enumerate(levels):
        log(f"contention: {clients} clients for {seconds:.0f} s")
        result = _level(local.endpoint_url, clients, seconds, seed=n + 1)
        log(
            f"contention {clients}: {result['bookings_per_s']} booked/s, "
            f"{result['conflicts_per_s']} conflicts/s, {result['busy_503_per_s']} busy/s, "
            f"{result['transaction_conflicts_per_s']} TransactionConflict/s, "
            f"double bookings {result['double_bookings']}, audit ok {result['audit']['ok']}"
        )
        out.append(result)
    return {
        "doctor_slots": 10,
        "day": FIRST_DAY.isoformat(),
        "now": NOW.isoformat(),
        "levels": out,
        "client_config": CLIENT_CONFIG,
        "note": (
            "throughput is DynamoDB Local's (one JVM on this machine, transactions that touch "
            "the same items wait for each other), not AWS's; 503s are the adapter's answer "
            "when a call times out (5 s read timeout, 3 attempts) or stays in conflict; "
            "TransactionConflict counts every transaction attempt cancelled by a concurrent "
            "one on the same guard item"
        ),
        "target": {
            "what": "double bookings and guard mismatches found by the read-back",
            "double_bookings": sum(r["double_bookings"] for r in out),
            "met": all(r["audit"]["ok"] for r in out),
        },
    }
