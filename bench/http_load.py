"""Local HTTP load: `citas serve --no-demo` (memory backend) under a bounded mixed load.

A few client threads, each with one keep-alive `http.client` connection, send for a fixed
time: 50 % GET availability, 25 % POST /appointments (a new patient each time, a random slot
of 20 doctors over 30 days, so some land on a taken slot: 409 is expected and counted) and
25 % GET of an appointment booked earlier. Every other status is an error. The server runs
with its default console notifier, so it also prints each patient message (as `make run`).
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import random
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.common import EVERY_DAY, Quick, log, summary
from bench.server import Server

DOCTORS = 20
DAYS = 30
WEIGHTS = (("availability", 0.5), ("book", 0.25), ("get", 0.25))
EXPECTED = {"availability": {200}, "book": {201, 409}, "get": {200}}
MAX_REQUESTS = 500_000


class Client:
    """One keep-alive connection to the server."""

    def __init__(self, base_url: str, api_key: str) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.api_key = api_key
        self.connection = http.client.HTTPConnection(self.host, self.port, timeout=30)

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        headers = {"x-api-key": self.api_key, "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            try:
                self.connection.request(method, path, body=data, headers=headers)
                response = self.connection.getresponse()
                return response.status, response.read()
            except (ConnectionError, http.client.HTTPException):
                # The server closed an idle keep-alive connection: reconnect once.
                self.connection.close()
                self.connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.connection.close()


# The same `citas serve`, with TCP_NODELAY on its connections: the server writes the
# headers and the body of a response in two writes, so Nagle's algorithm holds the body
# until the client's delayed ACK of the headers (about 40 ms on Linux).
NODELAY_SERVE = (
    "import sys\n"
    "from entrypoints.local import server\n"
    "server.ProxyRequestHandler.disable_nagle_algorithm = True\n"
    "from entrypoints.local.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def _serve_and_load(
    seconds: float, threads_n: int, command: list[str] | None = None
) -> dict[str, Any]:
    began = time.monotonic()
    server = Server.start(("--no-demo",), command=command)
    startup = round(time.monotonic() - began, 2)
    log(f"http: {server.base_url} ({startup} s), {threads_n} client threads for {seconds:.0f} s")
    try:
        return {**_load(server, seconds, threads_n), "server_startup_seconds": startup}
    finally:
        code = server.stop()
        server.close()
        log(f"http: server stopped (exit {code})")


def run(q: Quick, results_dir: Path) -> dict[str, Any]:
    import sys

    from entrypoints.local.server import ProxyRequestHandler

    seconds = q.pick(25.0, 3.0)
    threads_n = q.pick(8, 4)
    result = _serve_and_load(seconds, threads_n)
    result["server_tcp_nodelay"] = bool(ProxyRequestHandler.disable_nagle_algorithm)
    # A server of its own for each load, memory backend: no DynamoDB Local is involved.
    result["server"] = {
        "kind": "citas serve (memory backend)",
        "fresh": True,
        "started_for": "http",
        "startup_seconds": result.pop("server_startup_seconds"),
        "why": "bench/http_load.py starts its own `citas serve` for each load and stops it",
    }
    if not ProxyRequestHandler.disable_nagle_algorithm:
        log("http: what if the server set TCP_NODELAY (patched in this run only)")
        command = [sys.executable, "-c", NODELAY_SERVE, "serve", "--host", "127.0.0.1"]
        command += ["--port", "0", "--no-demo"]
        what_if = _serve_and_load(q.pick(10.0, 3.0), threads_n, command)
        result["what_if_tcp_nodelay"] = {
            k: what_if[k]
            for k in ("requests", "requests_per_s", "latency_s", "unexpected_statuses")
        }
    return result


def _load(server: Server, seconds: float, threads_n: int) -> dict[str, Any]:
    setup = Client(server.base_url, server.api_key)
    hours = {d: [["08:00", "13:00"]] for d in EVERY_DAY}
    doctors = [f"dr-carga-{n:02d}" for n in range(DOCTORS)]
    for doctor in doctors:
        status, body = setup.call(
            "PUT",
            f"/doctors/{doctor}",
            {
                "name": "Dr. Carga",
                "country": "PE",
                "slot_minutes": 30,
                "working_hours": hours,
                # The server runs on the real clock: the 30 days booked may hold national
                # holidays (PE: 8, 9 and 25 December), which a doctor refuses by default
                # (422) and this load counts as unexpected. Within the default 90-day horizon.
                "works_on_holidays": True,
            },
        )
        if status not in (200, 201):
            raise RuntimeError(f"PUT /doctors/{doctor}: {status} {body[:200]!r}")
    setup.close()
    # Lima has no daylight saving: -05:00 all year. Days start the day after tomorrow (UTC),
    # so that no slot is in the past whatever the hour.
    first = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=2)
    days = [first + dt.timedelta(days=d) for d in range(DAYS)]
    booked: list[str] = []
    booked_lock = threading.Lock()
    results: list[list[tuple[str, int, float]]] = [[] for _ in range(threads_n)]
    failures: list[str] = []
    patient_counter = iter(range(10_000_000))
    counter_lock = threading.Lock()
    gate = threading.Barrier(threads_n + 1)
    deadline = [0.0]
    names = [n for n, _ in WEIGHTS]
    weights = [w for _, w in WEIGHTS]

    def worker(index: int) -> None:
        rng = random.Random(index)
        client = Client(server.base_url, server.api_key)
        mine = results[index]
        gate.wait()
        try:
            while time.monotonic() < deadline[0] and len(mine) < MAX_REQUESTS // threads_n:
                op = rng.choices(names, weights)[0]
                with booked_lock:
                    known = booked[rng.randrange(len(booked))] if booked else None
                if op == "get" and known is None:
                    op = "availability"
                doctor = rng.choice(doctors)
                day = rng.choice(days)
                began = time.perf_counter()
                if op == "availability":
                    status, _ = client.call(
                        "GET", f"/doctors/{doctor}/availability?date={day.isoformat()}"
                    )
                elif op == "get":
                    status, _ = client.call("GET", f"/appointments/{known}")
                else:
                    with counter_lock:
                        n = next(patient_counter)
                    minutes = 8 * 60 + rng.randrange(10) * 30
                    start = f"{day.isoformat()}T{minutes // 60:02d}:{minutes % 60:02d}:00-05:00"
                    status, body = client.call(
                        "POST",
                        "/appointments",
                        {
                            "doctor_id": doctor,
                            "patient": {"name": f"Paciente {n}", "phone": f"+5198{n:07d}"},
                            "start": start,
                        },
                    )
                    if status == 201:
                        with booked_lock:
                            booked.append(json.loads(body)["appointment_id"])
                mine.append((op, status, time.perf_counter() - began))
        except Exception as error:
            failures.append(f"{type(error).__name__}: {error}")
        finally:
            client.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads_n)]
    for t in threads:
        t.start()
    deadline[0] = time.monotonic() + seconds
    began = time.monotonic()
    gate.wait()
    for t in threads:
        t.join(timeout=seconds + 60)
    elapsed = time.monotonic() - began
    rows = [r for per in results for r in per]
    by_op: dict[str, Any] = {}
    statuses: Counter[str] = Counter()
    errors = 0
    for name in names:
        mine = [r for r in rows if r[0] == name]
        codes = Counter(r[1] for r in mine)
        unexpected = sum(c for s, c in codes.items() if s not in EXPECTED[name])
        errors += unexpected
        for s, c in codes.items():
            statuses[f"{name} {s}"] += c
        by_op[name] = {
            "requests": len(mine),
            "statuses": {str(k): v for k, v in sorted(codes.items())},
            "unexpected": unexpected,
            "latency_s": summary([r[2] for r in mine], (50, 95, 99)),
        }
    latency = summary([r[2] for r in rows], (50, 95, 99))
    conflicts = sum(1 for r in rows if r[0] == "book" and r[1] == 409)
    result = {
        "base_url": server.base_url,
        "client_threads": threads_n,
        "seconds": round(elapsed, 2),
        "requests": len(rows),
        "requests_per_s": round(len(rows) / elapsed, 1),
        "latency_s": latency,
        "by_operation": by_op,
        "booked": len(booked),
        "conflicts_409": conflicts,
        "unexpected_statuses": errors,
        "client_failures": failures,
        "target": {
            "what": "no unexpected status (409 on a taken slot is expected)",
            "met": errors == 0 and not failures,
        },
    }
    log(
        f"http: {result['requests_per_s']} req/s, p50 {latency['p50'] * 1000:.1f} ms, "
        f"p99 {latency['p99'] * 1000:.1f} ms, {conflicts} x 409, {errors} unexpected"
    )
    return result
