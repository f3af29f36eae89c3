"""Contention: many clients booking into the same ten slots of one doctor on DynamoDB Local.

Each client is a thread with its own boto3 client and its own `Clinic` on the DynamoDB
adapters (the production client settings: 3 attempts, 2 s connect, 5 s read timeout). For a
fixed time every client either books a random slot with a random duration (30, 60 or 90 min,
so bookings overlap partially) for one of 40 patients, or cancels one of its own bookings
(half the time, when it has one), so the slots keep changing hands. Afterwards the table is
read back: double bookings (overlapping active appointments of the doctor or a patient) and
cell mismatches must be 0.
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
    worlds = [
        ddb_mod.clinic_on(
            session.client(
                "dynamodb",
                endpoint_url=endpoint_url,
                region_name=ddb_mod.REGION,
                aws_access_key_id="dummy",
                aws_secret_access_key="dummy",
                config=Config(**CLIENT_CONFIG),
            ),
            table,
        )[0]
        for _ in range(clients)
    ]
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
    levels = q.pick([1, 8, 32, 128], [1, 8])
    seconds = q.pick(20.0, 3.0)
    local = ddb_mod.server()
    out = []
    for n, clients in enumerate(levels):
        log(f"contention: {clients} clients for {seconds:.0f} s")
        result = _level(local.endpoint_url, clients, seconds, seed=n + 1)
        log(
            f"contention {clients}: {result['bookings_per_s']} booked/s, "
            f"{result['conflicts_per_s']} conflicts/s, {result['busy_503_per_s']} busy/s, "
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
            "when a call times out (5 s read timeout, 3 attempts) or stays in conflict"
        ),
        "target": {
            "what": "double bookings and cell mismatches found by the read-back",
            "double_bookings": sum(r["double_bookings"] for r in out),
            "met": all(r["audit"]["ok"] for r in out),
        },
    }
