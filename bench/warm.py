"""Warm latency in process: the HTTP handler against the `Clinic` use case it calls.

One memory-backend container with a fixed clock. Each operation is measured through
`handler(event, context)` (API Gateway REST proxy events, prepared before timing) and by
calling the use case directly with a prepared command, and (in process) by a bare Powertools
resolver answering a constant (bench/bare_resolver.py), the floor of any such handler; the
order rotates call by call so that all see the same store and the same machine noise. The
memory store lists by scanning all its appointments, so lists and availability are measured
first, on a store of known size.
"""

from __future__ import annotations

import cProfile
import datetime as dt
import gc
import importlib
import io
import json
import pstats
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.bare_resolver import BARE_RESOLVER, bare_resolver, ping_event
from bench.common import (
    FIRST_DAY,
    MORNING_HOURS,
    NOW,
    REPO_ROOT,
    SLOT_MINUTES,
    SLOTS_PER_DAY,
    Quick,
    local_start,
    log,
    phone,
    ratio,
    stdout_to_devnull,
    summary,
)

TARGET_RATIO = 1.5
OPERATIONS = ("book", "get", "list_doctor_day", "availability")


class WarmWorld:
    """The container, its clinic, the handler, doctors and a base of booked days."""

    def __init__(
        self, doctors: int, days: int, base_doctor_days: int, settings: Any = None
    ) -> None:
        from adapters.system import FixedClock
        from domain.appointment import Patient
        from domain.commands import BookAppointment, RegisterDoctor
        from entrypoints import bootstrap
        from entrypoints.config import Settings
        from tests.unit import apigw

        self.apigw = apigw
        self.context = apigw.FakeLambdaContext()
        self.app = bootstrap.build_app(
            settings or Settings(notifier="memory"), clock=FixedClock(NOW.astimezone(dt.UTC))
        )
        self.clinic = self.app.for_clinic("demo")
        app = self.app
        self.handler: Callable[[dict[str, Any], Any], dict[str, Any]] = importlib.import_module(
            "entrypoints.lambda.http_api"
        ).make_handler(lambda: app)
        self.doctors = [f"doc-{n:03d}" for n in range(doctors)]
        for doctor in self.doctors:
            self.clinic.register_doctor(
                RegisterDoctor(doctor, f"Dra. {doctor}", "PE", MORNING_HOURS, None, SLOT_MINUTES)
            )
        self.doctor_days = [
            (doctor, FIRST_DAY + dt.timedelta(days=d))
            for d in range(days)
            for doctor in self.doctors
        ]
        self.base = self.doctor_days[:base_doctor_days]
        self.free = self.doctor_days[base_doctor_days:]
        self.patients = 0
        self.base_ids: list[str] = []
        for doctor, day in self.base:
            for slot in range(SLOTS_PER_DAY):
                command = BookAppointment(doctor, self._patient(Patient), local_start(day, slot))
                self.base_ids.append(self.clinic.book(command).appointment_id)

    def _patient(self, patient_type: Any) -> Any:
        self.patients += 1
        return patient_type(f"Paciente {self.patients}", phone(self.patients))

    def free_slots(self) -> list[tuple[str, dt.datetime]]:
        return [
            (doctor, local_start(day, slot))
            for doctor, day in self.free
            for slot in range(SLOTS_PER_DAY)
        ]

    def store_size(self) -> int | None:
        if self.app.memory is None:  # the aws backend has no memory store
            return None
        return len(self.app.memory.store.appointments)

    def close(self) -> None:
        """Nothing to undo: the world's app is its own."""


def rotation(i: int, paths: int) -> list[int]:
    """The order of the timed paths in iteration i: each one leads once every `paths` calls."""
    return [(i + k) % paths for k in range(paths)]


class _Timings:
    """The times of one operation's paths (handler, use case, bare resolver) and bad answers."""

    def __init__(self) -> None:
        self.times: tuple[list[float], list[float], list[float]] = ([], [], [])
        self.unexpected = [0, 0, 0]
        self.event_bytes: tuple[int, int] | None = None


def _pairs(
    world: WarmWorld,
    n: int,
    via_handler: Callable[[int], tuple[dict[str, Any], int]],
    via_use_case: Callable[[int], Callable[[], Any]],
    bare: Callable[[dict[str, Any], Any], dict[str, Any]] | None = None,
) -> _Timings:
    """Time n handler calls, n use-case calls and (with `bare`) n bare-resolver calls,
    interleaved, the order rotating every iteration; with their unexpected statuses."""
    world_handler, context = world.handler, world.context
    out = _Timings()
    clock = time.perf_counter_ns
    gc.collect()
    for i in range(n):
        event, expected = via_handler(i)
        call = via_use_case(i)
        ping = ping_event(event) if bare is not None else None
        if out.event_bytes is None:
            out.event_bytes = (len(json.dumps(event)), len(json.dumps(ping)) if ping else 0)
        for path in rotation(i, 2 if ping is None else 3):
            status: bool | None = None
            began = clock()
            if path == 0:
                status = world_handler(event, context).get("statusCode") == expected
            elif path == 1:
                call()
            elif bare is not None and ping is not None:
                status = bare(ping, context).get("statusCode") == 200
            out.times[path].append((clock() - began) / 1e9)
            if status is False:
                out.unexpected[path] += 1
    return out


def _record(timings: _Timings) -> dict[str, Any]:
    """One operation's summaries: handler, use case, and the bare resolver if it was timed."""
    handler_times, use_case_times, bare_times = timings.times
    h, u = summary(handler_times), summary(use_case_times)
    out: dict[str, Any] = {
        "handler_s": h,
        "use_case_s": u,
        "ratio_p50": ratio(h["p50"], u["p50"]),
        "overhead_p50_s": h["p50"] - u["p50"],
        "unexpected_status": timings.unexpected[0],
    }
    if bare_times:
        b = summary(bare_times)
        out["bare_resolver_s"] = b
        out["overhead_beyond_bare_p50_s"] = out["overhead_p50_s"] - b["p50"]
        out["bare_resolver_unexpected_status"] = timings.unexpected[2]
        if timings.event_bytes:
            out["event_bytes"], out["ping_event_bytes"] = timings.event_bytes
    return out


def measure(world: WarmWorld, n: int, *, bare: bool = True) -> dict[str, Any]:
    """Every operation, handler and use case (and a bare resolver), n calls each."""
    from domain.appointment import Patient
    from domain.commands import BookAppointment, ListDoctorDay

    apigw = world.apigw
    out: dict[str, Any] = {}
    ids = world.base_ids
    days = world.base
    resolver = bare_resolver() if bare else None

    def record(name: str, timings: _Timings, **extra: Any) -> None:
        out[name] = {**_record(timings), **extra}
        o = out[name]
        log(
            f"warm {name}: handler p50 {o['handler_s']['p50'] * 1e6:.0f} µs, "
            f"use case p50 {o['use_case_s']['p50'] * 1e6:.0f} µs, ratio {o['ratio_p50']}"
            + (
                f", bare resolver p50 {o['bare_resolver_s']['p50'] * 1e6:.0f} µs"
                if "bare_resolver_s" in o
                else ""
            )
        )

    store = world.store_size()
    record(
        "get",
        _pairs(
            world,
            n,
            lambda i: (apigw.event("GET", f"/appointments/{ids[i % len(ids)]}"), 200),
            lambda i: lambda: world.clinic.get(ids[i % len(ids)]),
            resolver,
        ),
        store_appointments=store,
    )
    record(
        "list_doctor_day",
        _pairs(
            world,
            n,
            lambda i: (
                apigw.event(
                    "GET",
                    "/appointments",
                    query={
                        "doctor_id": days[i % len(days)][0],
                        "date": days[i % len(days)][1].isoformat(),
                    },
                ),
                200,
            ),
            lambda i: (
                lambda: world.clinic.list_doctor_day(
                    ListDoctorDay(days[i % len(days)][0], days[i % len(days)][1])
                )
            ),
            resolver,
        ),
        store_appointments=store,
        items_per_page=SLOTS_PER_DAY,
    )
    record(
        "availability",
        _pairs(
            world,
            n,
            lambda i: (
                apigw.event(
                    "GET",
                    f"/doctors/{days[i % len(days)][0]}/availability",
                    query={"date": days[i % len(days)][1].isoformat()},
                ),
                200,
            ),
            lambda i: (
                lambda: world.clinic.availability(days[i % len(days)][0], days[i % len(days)][1])
            ),
            resolver,
        ),
        store_appointments=store,
    )
    slots = world.free_slots()
    if len(slots) < 2 * n:
        raise RuntimeError(f"the warm world has {len(slots)} free slots, {2 * n} are needed")

    def book_event(i: int) -> tuple[dict[str, Any], int]:
        doctor, start = slots[2 * i]
        world.patients += 1
        body = {
            "doctor_id": doctor,
            "patient": {"name": f"Paciente {world.patients}", "phone": phone(world.patients)},
            "start": start.isoformat(),
        }
        return apigw.event("POST", "/appointments", body=body), 201

    def book_call(i: int) -> Callable[[], Any]:
        doctor, start = slots[2 * i + 1]
        world.patients += 1
        command = BookAppointment(
            doctor, Patient(f"Paciente {world.patients}", phone(world.patients)), start
        )
        return lambda: world.clinic.book(command)

    record(
        "book",
        _pairs(world, n, book_event, book_call, resolver),
        store_appointments_before=store,
        store_appointments_after=world.store_size(),
    )
    return out


def profile_handler(world: WarmWorld, n: int, results_dir: Path) -> dict[str, Any]:
    """cProfile of n GET + n POST /appointments handler calls: where the time goes."""
    apigw = world.apigw
    ids = world.base_ids
    get_events = [apigw.event("GET", f"/appointments/{ids[i % len(ids)]}") for i in range(n)]
    slots = world.free_slots()[-n:]
    book_events = []
    for doctor, start in slots:
        world.patients += 1
        body = {
            "doctor_id": doctor,
            "patient": {"name": f"Paciente {world.patients}", "phone": phone(world.patients)},
            "start": start.isoformat(),
        }
        book_events.append(apigw.event("POST", "/appointments", body=body))
    profiler = cProfile.Profile()
    with stdout_to_devnull():
        profiler.enable()
        for event in [*get_events, *book_events]:
            world.handler(event, world.context)
        profiler.disable()
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(25)
    (results_dir / "profile_handler.txt").write_text(text.getvalue(), encoding="utf-8")

    def top(key: str) -> list[dict[str, Any]]:
        rows = []
        for (filename, line, function), (_cc, calls, tottime, cumtime, _callers) in sorted(
            stats.stats.items(),  # type: ignore[attr-defined]
            key=lambda item: item[1][2 if key == "tottime" else 3],
            reverse=True,
        )[:10]:
            rows.append(
                {
                    "function": f"{_short(filename)}:{line}({function})",
                    "calls": calls,
                    "tottime_s": round(tottime, 4),
                    "cumtime_s": round(cumtime, 4),
                    "per_request_us": round(
                        (tottime if key == "tottime" else cumtime) / (2 * n) * 1e6, 1
                    ),
                }
            )
        return rows

    def cumulative(file_end: str, function: str) -> float:
        total = sum(
            row[3]
            for (filename, _line, name), row in stats.stats.items()  # type: ignore[attr-defined]
            if filename.endswith(file_end) and name == function
        )
        return round(total / (2 * n) * 1e6, 1)

    layers = {
        "handler (whole call)": cumulative("lambda/http_api.py", "handler"),
        "Powertools resolve (routing, route, use case, response)": cumulative(
            "event_handler/api_gateway.py", "resolve"
        ),
        # Where these live today (entrypoints/http_routes.py, domain/use_cases/booking.py):
        # a layer whose function moved would read 0.0.
        "request log line (log_request)": cumulative("entrypoints/http_routes.py", "log_request"),
        "use cases (Clinic.book + Clinic.get)": round(
            cumulative("domain/use_cases/booking.py", "book")
            + cumulative("domain/use_cases/booking.py", "get"),
            1,
        ),
    }
    return {
        "requests": 2 * n,
        "what": "half GET /appointments/{id}, half POST /appointments",
        "layers_us_per_request": layers,
        "top_tottime": top("tottime"),
        "top_cumulative": top("cumtime"),
    }


def _short(filename: str) -> str:
    for marker in ("site-packages/", f"{REPO_ROOT}/", "/lib/python3.11/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def _warm_up(world: WarmWorld) -> None:
    # First calls pay for lazy imports, the cold-start metric and connection set-up.
    for i in range(50):
        world.handler(world.apigw.event("GET", f"/appointments/{world.base_ids[i]}"), None)


def on_dynamodb_local(q: Quick) -> dict[str, Any]:
    """The same comparison through the AWS adapters, on DynamoDB Local."""
    from bench import ddb
    from entrypoints.config import Settings

    n = q.pick(400, 40)
    doctors, days, base = q.pick((15, 7, 15), (4, 4, 6))
    local = ddb.server()
    admin = ddb.client(local.endpoint_url)
    table = ddb.fresh_table(admin, "citas-warm")
    log(f"warm on DynamoDB Local: {n} calls per operation and path")
    with ddb.aws_environment(local.endpoint_url, table):
        settings = Settings(backend="aws", table_name=table, notifier="memory")
        world = WarmWorld(doctors, days, base, settings)
        try:
            with stdout_to_devnull():
                _warm_up(world)
                # The bare resolver is timed once, in process (run): its cost has nothing to
                # do with the backend.
                operations = measure(world, n, bare=False)
        finally:
            world.close()
    admin.delete_table(TableName=table)
    return {"calls_per_operation": n, "operations": operations}


def run(q: Quick, results_dir: Path) -> dict[str, Any]:
    n = q.pick(5000, 300)
    doctors, days, base = q.pick((50, 24, 100), (10, 8, 20))
    log(f"warm: {n} calls per operation and path; building the world")
    world = WarmWorld(doctors, days, base)
    # The benchmark's own set-up (a store of 1,000 appointments) is no garbage a Lambda
    # process would carry: keep it out of the collector's full passes while timing.
    gc.collect()
    gc.freeze()
    try:
        with stdout_to_devnull():
            _warm_up(world)
            operations = measure(world, n)
        profile = profile_handler(world, q.pick(1000, 100), results_dir)
    finally:
        world.close()
        gc.unfreeze()
    on_ddb = on_dynamodb_local(q)
    worst = max(operations.values(), key=lambda o: o["ratio_p50"] or 0)
    return {
        "calls_per_operation": n,
        "backend": "memory",
        "operations": operations,
        "profile": profile,
        "gc": "set-up objects frozen (gc.freeze) before timing",
        "bare_resolver": BARE_RESOLVER,
        "order": "handler, use case and bare resolver interleaved, the order rotating each "
        "iteration",
        "dynamodb_local": on_ddb,
        "target": {
            "what": "handler p50 / use case p50, per operation",
            "max_ratio": TARGET_RATIO,
            "worst": worst["ratio_p50"],
            "met": all((o["ratio_p50"] or 0) <= TARGET_RATIO for o in operations.values()),
        },
    }
