"""Soak: mixed traffic on a running citas (AWS adapters), then an audit of its DynamoDB table.

    python -m bench.soak --base-url URL --dynamodb-endpoint URL [--table citas-local]
    python -m bench.soak --stack        # starts scripts/run-aws-local.sh itself

A few client threads register their own doctors (two in Lima, one in Santiago, every day
08:00-13:00) and then, for `--seconds`, book free slots taken from the availability answer
(patients from a pool of 150, so a patient is sometimes double-booked: 409), reschedule,
confirm, cancel, read and list their appointments. The server runs on the real clock, so
everything is booked from the day after tomorrow on. Expected refusals (409, 412) are
counted; any other non-success status is an error. Then the whole table is scanned and
audited (bench/audit.py): no overlapping active appointments of a doctor or a patient,
every active appointment holds exactly its cells, no orphan cell.

With `--stack`, the endpoint and table are learned from the script's output: a line
`AWS_ENDPOINT_URL_DYNAMODB=<url>` (or any line naming DynamoDB with an http:// URL) and
optionally `CITAS_TABLE_NAME=<name>`; otherwise from this environment's variables of the
same names. The table defaults to `citas-local`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench.common import EVERY_DAY, REPO_ROOT, RESULTS_DIR, Quick, log, summary
from bench.http_load import Client
from bench.server import BANNER, clean_env

STACK_SCRIPT = REPO_ROOT / "scripts" / "run-aws-local.sh"
DOCTORS = (("soak-lima-1", "PE"), ("soak-lima-2", "PE"), ("soak-santiago-1", "CL"))
PATIENTS = 150
DAYS = 14
OPERATIONS = (
    ("book", 0.30),
    ("reschedule", 0.12),
    ("confirm", 0.12),
    ("cancel", 0.10),
    ("get", 0.14),
    ("list_doctor_day", 0.08),
    ("list_country_status", 0.06),
    ("availability", 0.08),
)
EXPECTED = {
    "book": {201, 409},
    "reschedule": {200, 409, 412},
    "confirm": {200, 409, 412},
    "cancel": {200, 409, 412},
    "get": {200},
    "list_doctor_day": {200},
    "list_country_status": {200},
    "availability": {200},
}
BUSY = 503


class Traffic:
    """The clients' shared view: who booked what, and the counters."""

    def __init__(self, base_url: str, api_key: str, seed: int) -> None:
        self.base_url = base_url
        self.api_key = api_key
        self.seed = seed
        self.lock = threading.Lock()
        self.appointments: list[str] = []
        self.statuses: Counter[str] = Counter()
        self.latencies: dict[str, list[float]] = {name: [] for name, _ in OPERATIONS}
        self.unexpected: list[str] = []
        self.failures: list[str] = []
        first = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=2)
        self.days = [first + dt.timedelta(days=d) for d in range(DAYS)]

    def setup(self) -> None:
        client = Client(self.base_url, self.api_key)
        hours = {d: [["08:00", "13:00"]] for d in EVERY_DAY}
        for doctor, country in DOCTORS:
            status, body = client.call(
                "PUT",
                f"/doctors/{doctor}",
                {
                    "name": f"Dr. {doctor}",
                    "country": country,
                    "slot_minutes": 30,
                    "working_hours": hours,
                    # The real clock: the 14 days may hold national holidays, which would
                    # empty their availability by default; the traffic stays the same
                    # whatever the date. Within the default 90-day horizon.
                    "works_on_holidays": True,
                },
            )
            if status not in (200, 201):
                raise RuntimeError(f"PUT /doctors/{doctor}: {status} {body[:300]!r}")
        client.close()

    def record(self, op: str, status: int, seconds: float, body: bytes) -> None:
        with self.lock:
            self.statuses[f"{op} {status}"] += 1
            self.latencies[op].append(seconds)
            if status not in EXPECTED[op] and status != BUSY:
                self.unexpected.append(f"{op} {status} {body[:200]!r}")

    def worker(self, index: int, deadline: float) -> None:
        rng = random.Random(self.seed * 100 + index)
        client = Client(self.base_url, self.api_key)
        names = [n for n, _ in OPERATIONS]
        weights = [w for _, w in OPERATIONS]
        try:
            while time.monotonic() < deadline:
                op = rng.choices(names, weights)[0]
                self._one(client, rng, op)
        except Exception as error:
            with self.lock:
                self.failures.append(f"{type(error).__name__}: {error}")
        finally:
            client.close()

    def _call(
        self, client: Client, op: str, method: str, path: str, body: Any = None, **headers: str
    ) -> tuple[int, bytes]:
        began = time.perf_counter()
        if headers:
            status, raw = _call_with_headers(client, method, path, body, headers)
        else:
            status, raw = client.call(method, path, body)
        self.record(op, status, time.perf_counter() - began, raw)
        return status, raw

    def _free_slots(self, client: Client, doctor: str, day: dt.date) -> list[dict[str, str]]:
        status, raw = self._call(
            client, "availability", "GET", f"/doctors/{doctor}/availability?date={day}"
        )
        return json.loads(raw)["slots"] if status == 200 else []

    def _known(self, rng: random.Random) -> str | None:
        with self.lock:
            if not self.appointments:
                return None
            return self.appointments[rng.randrange(len(self.appointments))]

    def _one(self, client: Client, rng: random.Random, op: str) -> None:
        doctor, country = rng.choice(DOCTORS)
        day = rng.choice(self.days)
        if op == "availability":
            self._free_slots(client, doctor, day)
            return
        if op == "book":
            slots = self._free_slots(client, doctor, day)
            if not slots:
                return
            minutes = rng.choice((30, 30, 60))
            slots = [s for s in slots if _fits(s["start"], minutes)]
            if not slots:
                return
            n = rng.randrange(PATIENTS)
            body = {
                "doctor_id": doctor,
                "patient": {"name": f"Paciente {n}", "phone": f"+5197{n:07d}"},
                "start": rng.choice(slots)["start"],
                "duration_minutes": minutes,
            }
            status, raw = self._call(client, "book", "POST", "/appointments", body)
            if status == 201:
                with self.lock:
                    self.appointments.append(json.loads(raw)["appointment_id"])
            return
        if op == "list_country_status":
            status = rng.choice(("requested", "confirmed", "cancelled"))
            self._call(client, op, "GET", f"/appointments?country={country}&status={status}")
            return
        if op == "list_doctor_day":
            self._call(client, op, "GET", f"/appointments?doctor_id={doctor}&date={day}")
            return
        known = self._known(rng)
        if known is None:
            return
        path = f"/appointments/{quote(known)}"
        if op == "get":
            self._call(client, op, "GET", path)
            return
        status, raw = client.call("GET", path)
        if status != 200:
            self.record("get", status, 0.0, raw)
            return
        current = json.loads(raw)
        version = str(current["version"])
        # Half the changes say If-Match: a concurrent change then answers 412.
        headers = {"If-Match": version} if rng.random() < 0.5 else {}
        if op == "confirm":
            self._call(client, op, "POST", f"{path}/status", {"status": "confirmed"}, **headers)
        elif op == "cancel":
            self._call(client, op, "DELETE", path, None, **headers)
        elif op == "reschedule":
            target = rng.choice(self.days)
            slots = [
                s
                for s in self._free_slots(client, current["doctor_id"], target)
                if _fits(s["start"], current["duration_minutes"])
            ]
            if slots:
                body = {"start": rng.choice(slots)["start"]}
                self._call(client, op, "PATCH", path, body, **headers)

    def result(self, elapsed: float) -> dict[str, Any]:
        total = sum(self.statuses.values())
        return {
            "seconds": round(elapsed, 1),
            "requests": total,
            "requests_per_s": round(total / elapsed, 1) if elapsed else None,
            "statuses": dict(sorted(self.statuses.items())),
            "busy_503": sum(v for k, v in self.statuses.items() if k.endswith(" 503")),
            "latency_s": {op: summary(v, (50, 95, 99)) for op, v in self.latencies.items() if v},
            "appointments_booked": len(self.appointments),
            "unexpected_statuses": len(self.unexpected),
            "unexpected_examples": self.unexpected[:10],
            "client_failures": self.failures,
        }


def _fits(start: str, minutes: int) -> bool:
    """Whether a visit of `minutes` from this local start ends by 13:00, the end of hours."""
    local = dt.datetime.fromisoformat(start)
    return local.hour * 60 + local.minute + minutes <= 13 * 60


def _call_with_headers(
    client: Client, method: str, path: str, body: Any, headers: dict[str, str]
) -> tuple[int, bytes]:
    sent = {"x-api-key": client.api_key, "Accept": "application/json", **headers}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        sent["Content-Type"] = "application/json"
    client.connection.request(method, path, body=data, headers=sent)
    response = client.connection.getresponse()
    return response.status, response.read()


def soak(
    base_url: str,
    api_key: str,
    dynamodb_endpoint: str,
    table: str,
    seconds: float,
    clients: int = 4,
    seed: int = 1,
    access_key_id: str = "dummy",
    region: str = "us-east-1",
) -> dict[str, Any]:
    """Run the traffic, then audit the table; `ok` only if both are clean."""
    from bench import audit as audit_mod
    from bench import ddb as ddb_mod

    traffic = Traffic(base_url, api_key, seed)
    traffic.setup()
    log(f"soak: {clients} clients for {seconds:.0f} s on {base_url}")
    deadline = time.monotonic() + seconds
    began = time.monotonic()
    threads = [
        threading.Thread(target=traffic.worker, args=(i, deadline), daemon=True)
        for i in range(clients)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 120)
    result = traffic.result(time.monotonic() - began)
    log(f"soak: {result['requests']} requests; auditing table {table} at {dynamodb_endpoint}")
    auditor = ddb_mod.client(dynamodb_endpoint, access_key_id=access_key_id, region=region)
    checked = audit_mod.audit(auditor, table)
    result["audit"] = checked
    result["ok"] = (
        checked["ok"] and result["unexpected_statuses"] == 0 and not result["client_failures"]
    )
    return result


# --- the local AWS stack -------------------------------------------------------------------


def _script_text() -> str:
    try:
        return STACK_SCRIPT.read_text(encoding="utf-8")
    except OSError:
        return ""


class Stack:
    """scripts/run-aws-local.sh in its own process group, its output in a file."""

    def __init__(self, port: int) -> None:
        self.output = tempfile.NamedTemporaryFile(prefix="citas-soak-", suffix=".log")  # noqa: SIM115
        self.process = subprocess.Popen(
            ["bash", str(STACK_SCRIPT)],
            cwd=REPO_ROOT,
            env=clean_env({"PORT": str(port), "CITAS_PORT": str(port)}),
            stdout=self.output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def text(self) -> str:
        return Path(self.output.name).read_text(encoding="utf-8", errors="replace")

    def wait_for_banner(self, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.text().splitlines():
                match = BANNER.match(line.strip())
                if match:
                    return match
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(
            f"{STACK_SCRIPT.name} printed no `citas: serving` line "
            f"(exit {self.process.poll()}):\n{self.text()[-3000:]}"
        )

    def setting(self, name: str, default: str) -> str:
        """`NAME=value` as the script printed it, else a literal `export NAME=value` in the
        script, else this environment's, else `default`."""
        match = re.search(rf"\b{name}=(\S+)", self.text())
        if match is None:
            match = re.search(rf"^\s*export {name}=([^\s$]+)\s*$", _script_text(), re.M)
        if match:
            return match.group(1).strip("'\"")
        return os.environ.get(name, default)

    def dynamodb(self) -> tuple[str | None, str]:
        text = self.text()
        endpoint = None
        match = re.search(r"AWS_ENDPOINT_URL_DYNAMODB=(\S+)", text)
        if match:
            endpoint = match.group(1).strip("'\"")
        else:
            for line in text.splitlines():
                url = re.search(r"(https?://[\w.\-\[\]:]+)", line)
                if url and "dynamo" in line.lower():
                    endpoint = url.group(1)
                    break
        endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL_DYNAMODB")
        table_match = re.search(r"CITAS_TABLE_NAME=(\S+)", text)
        table = (
            table_match.group(1).strip("'\"")
            if table_match
            else os.environ.get("CITAS_TABLE_NAME", "citas-local")
        )
        return endpoint, table

    def stop(self) -> None:
        if self.process.poll() is None:
            # The script's own process group: it and the servers it started, nothing else.
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.output.close()


def soak_on_stack(seconds: float, clients: int = 4) -> dict[str, Any]:
    from tests.support.dynamodb_local import free_port

    began = time.monotonic()
    stack = Stack(free_port())
    try:
        banner = stack.wait_for_banner(timeout=180)
        startup = round(time.monotonic() - began, 2)
        endpoint, table = stack.dynamodb()
        if endpoint is None:
            raise RuntimeError(
                f"{STACK_SCRIPT.name} did not say where DynamoDB Local listens: print "
                "`AWS_ENDPOINT_URL_DYNAMODB=<url>` (or set it in the environment)"
            )
        result = soak(
            banner["url"],
            banner["key"],
            endpoint,
            table,
            seconds,
            clients,
            access_key_id=stack.setting("AWS_ACCESS_KEY_ID", "dummy"),
            region=stack.setting("AWS_REGION", "us-east-1"),
        )
        result.update({"run": True, "stack": STACK_SCRIPT.name, "base_url": banner["url"]})
        result["dynamodb_endpoint"], result["table"] = endpoint, table
        result["server"] = {
            "kind": str(STACK_SCRIPT.relative_to(REPO_ROOT)),
            "fresh": True,
            "started_for": "soak",
            "startup_seconds": startup,
            "why": "the script starts its own in-memory DynamoDB Local, SQS emulator and "
            "`citas serve --backend aws`, and stops them; bench/ddb.py's server is not used",
        }
        return result
    finally:
        stack.stop()


def run_family(q: Quick, results_dir: Path) -> dict[str, Any]:
    """The `soak` family of bench/run.py: only when scripts/run-aws-local.sh exists."""
    if not STACK_SCRIPT.exists():
        log(f"soak: NOT RUN, {STACK_SCRIPT.relative_to(REPO_ROOT)} does not exist")
        reason = f"{STACK_SCRIPT.relative_to(REPO_ROOT)} does not exist in this checkout"
        return {"run": False, "reason": reason, "server": {"kind": "none", "why": reason}}
    result = soak_on_stack(q.pick(300.0, 20.0))
    result["target"] = {
        "what": "no unexpected status, audit clean (no overlap, exact cells, no orphan cell)",
        "met": result["ok"],
    }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--base-url", help="the running citas, e.g. http://127.0.0.1:8000")
    parser.add_argument("--api-key", default=os.environ.get("CITAS_API_KEY", "local-dev-key"))
    parser.add_argument("--dynamodb-endpoint", default=os.environ.get("AWS_ENDPOINT_URL_DYNAMODB"))
    parser.add_argument("--table", default=os.environ.get("CITAS_TABLE_NAME", "citas-local"))
    parser.add_argument(
        "--access-key-id",
        default=os.environ.get("AWS_ACCESS_KEY_ID", "dummy"),
        help="the server's: DynamoDB Local keeps one database per key id and region",
    )
    parser.add_argument("--region", default=os.environ.get("AWS_REGION", "us-east-1"))
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--stack", action="store_true", help=f"start {STACK_SCRIPT.name} first")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "soak.json")
    args = parser.parse_args(argv)
    if args.stack:
        if not STACK_SCRIPT.exists():
            print(f"soak: {STACK_SCRIPT} does not exist; not run", file=sys.stderr)
            return 2
        result = soak_on_stack(args.seconds, args.clients)
    else:
        if not args.base_url or not args.dynamodb_endpoint:
            parser.error("--base-url and --dynamodb-endpoint are needed (or --stack)")
        result = soak(
            args.base_url,
            args.api_key,
            args.dynamodb_endpoint,
            args.table,
            args.seconds,
            args.clients,
            access_key_id=args.access_key_id,
            region=args.region,
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    print(json.dumps({k: result[k] for k in ("requests", "requests_per_s", "ok")}))
    print(json.dumps(result["audit"]["violations"]))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
