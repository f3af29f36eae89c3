"""Scaling: list queries on a table of 1k, 10k and 100k appointments (DynamoDB Local).

The appointment items are loaded directly with BatchWriteItem, through the adapter's own
mapping (`appointment_to_item`), spread so that one doctor-day holds 10 appointments:
doctor `n` has ten days of ten 30-minute slots; doctors alternate between PE and CL;
statuses are 60 % requested, 30 % confirmed, 10 % cancelled. Only appointment items are
loaded (no cells, keys or events): the lists read only the two indexes. The table grows in
place (1k, then +9k, then +90k), and after each step the same two lists are measured:
a doctor's day and one page (limit 50) of a country's `requested` appointments.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import ddb as ddb_mod
from bench.common import (
    FIRST_DAY,
    LIMA,
    NOW,
    SANTIAGO,
    SLOT_MINUTES,
    SLOTS_PER_DAY,
    Quick,
    log,
    percentile,
    phone,
    summary,
)
from bench.cost import item_size, read_units

PER_DOCTOR = 100  # ten days of ten slots
DAYS_PER_DOCTOR = 10
TARGET_RATIO = 1.1
MAX_LOAD_SECONDS = 360
LOADER_THREADS = 4
STATUSES = ("requested",) * 6 + ("confirmed",) * 3 + ("cancelled",)


def _appointment(index: int, created: dt.datetime) -> Any:
    from domain.appointment import Appointment, Patient, Status

    doctor = index // PER_DOCTOR
    day = FIRST_DAY + dt.timedelta(days=(index // SLOTS_PER_DAY) % DAYS_PER_DOCTOR)
    slot = index % SLOTS_PER_DAY
    country, zone = ("PE", LIMA) if doctor % 2 == 0 else ("CL", SANTIAGO)
    minutes = 8 * 60 + slot * SLOT_MINUTES
    start = dt.datetime.combine(day, dt.time(minutes // 60, minutes % 60), tzinfo=zone)
    start = start.astimezone(dt.UTC)
    return Appointment(
        clinic_id="demo",
        appointment_id=f"{index:08x}-0000-7000-8000-{index:012x}",
        doctor_id=f"doc-{doctor:05d}",
        country=country,
        time_zone=str(zone),
        patient=Patient(f"Paciente {index}", phone(index, country)),
        start=start,
        end=start + dt.timedelta(minutes=SLOT_MINUTES),
        status=Status(STATUSES[index % len(STATUSES)]),
        version=1,
        created_at=created,
        updated_at=created,
        scheduled_at=created,
    )


def _items(first: int, last: int) -> Iterator[dict[str, Any]]:
    from adapters.aws.dynamodb import appointment_to_item

    created = NOW.astimezone(dt.UTC)
    for index in range(first, last):
        yield ddb_mod.to_attributes(appointment_to_item(_appointment(index, created)))


def load(endpoint_url: str, table: str, first: int, last: int) -> float:
    """BatchWriteItem appointments [first, last) with a few threads; returns seconds."""
    began = time.perf_counter()
    lock = threading.Lock()
    source = _items(first, last)
    errors: list[BaseException] = []

    def worker() -> None:
        client = ddb_mod.client(endpoint_url)
        try:
            while True:
                with lock:
                    batch = [item for _, item in zip(range(25), source, strict=False)]
                if not batch:
                    return
                requests = [{"PutRequest": {"Item": item}} for item in batch]
                for attempt in range(10):
                    answer = client.batch_write_item(RequestItems={table: requests})
                    requests = answer.get("UnprocessedItems", {}).get(table, [])
                    if not requests:
                        break
                    time.sleep(0.01 * 2**attempt)
                else:
                    raise RuntimeError("BatchWriteItem kept leaving items unprocessed")
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(LOADER_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - began


def _query_stats(client: Any, calls: ddb_mod.Calls, action: Any, n: int) -> dict[str, Any]:
    latencies: list[float] = []
    scanned: list[int] = []
    returned: list[int] = []
    reported: list[float] = []
    computed: list[float] = []
    for i in range(n):
        calls.take()
        began = time.perf_counter()
        action(i)
        latencies.append(time.perf_counter() - began)
        _, _, answers = calls.take()
        query = next(a for op, a in answers if op == "Query")
        scanned.append(int(query.get("ScannedCount", 0)))
        returned.append(int(query.get("Count", 0)))
        consumed = query.get("ConsumedCapacity") or {}
        reported.append(float(consumed.get("CapacityUnits", 0)))
        total = sum(item_size(item) for item in query.get("Items", []))
        computed.append(read_units(total, consistent=False))
    return {
        "queries": n,
        "latency_s": summary(latencies, (50, 90, 99)),
        "items_read_median": percentile(scanned, 50),
        "items_read_max": max(scanned),
        "items_returned_median": percentile(returned, 50),
        "rru_computed_median": percentile(computed, 50),
        "dynamodb_local_reported_units_median": percentile(reported, 50),
    }


def run(q: Quick, results_dir: Path) -> dict[str, Any]:
    from adapters.aws.dynamodb import DynamoDBAppointmentRepository
    from domain.appointment import Status
    from ports.repositories import Window

    sizes = q.pick([1_000, 10_000, 100_000], [1_000, 5_000])
    n_queries = q.pick(200, 30)
    local = ddb_mod.server()
    admin = ddb_mod.client(local.endpoint_url)
    table = ddb_mod.fresh_table(admin, "citas-scaling")
    client = ddb_mod.client(local.endpoint_url)
    calls = ddb_mod.Calls(client)
    repo = DynamoDBAppointmentRepository(table, client, clinic_id="demo")
    rng = random.Random(11)
    steps: list[dict[str, Any]] = []
    loaded = 0
    note = None
    for position, wanted in enumerate(sizes):
        size = wanted
        if position == len(sizes) - 1 and steps and size >= 100_000:
            # Go to 50k rather than spend more than ~6 minutes loading on a slow machine.
            rate = steps[-1]["load_items_per_s"]
            if (size - loaded) / rate > MAX_LOAD_SECONDS:
                size = 50_000
                note = (
                    f"loading at {rate:.0f} items/s would take {(wanted - loaded) / rate:.0f} s: "
                    f"stopped at {size} instead of {wanted}"
                )
                log(f"scaling: {note}")
        seconds = load(local.endpoint_url, table, loaded, size)
        rate = (size - loaded) / seconds
        log(
            f"scaling: loaded {size - loaded} items in {seconds:.1f} s "
            f"({rate:.0f} items/s), table now {size}"
        )
        loaded = size
        doctors = size // PER_DOCTOR

        def doctor_day(i: int, doctors: int = doctors) -> Any:
            doctor = rng.randrange(doctors)
            zone = LIMA if doctor % 2 == 0 else SANTIAGO
            day = FIRST_DAY + dt.timedelta(days=rng.randrange(DAYS_PER_DOCTOR))
            start = dt.datetime.combine(day, dt.time(0), tzinfo=zone)
            return repo.list_by_doctor(
                f"doc-{doctor:05d}", start, start + dt.timedelta(days=1), 50, None
            )

        def country_page(i: int) -> Any:
            return repo.list_by_country_status(
                "PE" if i % 2 == 0 else "CL", Status.REQUESTED, Window(), 50, None
            )

        step = {
            "appointments": size,
            "load_seconds": round(seconds, 1),
            "load_items_per_s": round(rate, 1),
            "doctor_day": _query_stats(client, calls, doctor_day, n_queries),
            "country_status_page": _query_stats(client, calls, country_page, n_queries),
        }
        steps.append(step)
        log(
            f"scaling {size}: doctor-day read {step['doctor_day']['items_read_median']} items, "
            f"p50 {step['doctor_day']['latency_s']['p50'] * 1000:.1f} ms; country page read "
            f"{step['country_status_page']['items_read_median']} items, "
            f"p50 {step['country_status_page']['latency_s']['p50'] * 1000:.1f} ms"
        )
    admin.delete_table(TableName=table)
    first, last = steps[0], steps[-1]
    ratios = {
        name: round(last[name]["items_read_median"] / first[name]["items_read_median"], 3)
        for name in ("doctor_day", "country_status_page")
    }
    latency_ratios = {
        name: round(last[name]["latency_s"]["p50"] / first[name]["latency_s"]["p50"], 3)
        for name in ("doctor_day", "country_status_page")
    }
    return {
        "table": table,
        "steps": steps,
        "largest": last["appointments"],
        "note": note or f"loaded up to {last['appointments']:,} appointments",
        "target": {
            "what": f"items read at {last['appointments']} / at {first['appointments']}, per list",
            "max_ratio": TARGET_RATIO,
            "items_read_ratio": ratios,
            "latency_p50_ratio": latency_ratios,
            "met": all(r <= TARGET_RATIO for r in ratios.values()),
        },
    }
