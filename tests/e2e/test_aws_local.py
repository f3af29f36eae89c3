"""`make run-aws-local` and `citas provision` as a new user runs them, on real local emulators.

The stack test starts `scripts/run-aws-local.sh` (DynamoDB Local, moto's SQS server, `citas
provision`, `citas serve --backend aws`) in its own process group, drives the README's requests
over HTTP, watches the outbox -> SQS -> consumer flow print the patients' Spanish messages, and
stops everything with Ctrl-C (SIGINT to the group), checking that no process is left.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from moto.server import ThreadedMotoServer

from tests.support.dynamodb_local import DynamoDBLocal, DynamoDBLocalUnavailable, free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "run-aws-local.sh"
CITAS = Path(sys.executable).parent / "citas"
BANNER = re.compile(
    r"^citas: serving (?P<url>http://\S+) \(backend aws\), x-api-key: (?P<key>\S+)$"
)
EMULATOR = re.compile(
    r"^run-aws-local: (?P<what>DynamoDB Local|SQS emulator) .*\(pid (?P<pid>\d+)\)$"
)
START_TIMEOUT = 90.0
FLOW_TIMEOUT = 5.0
STOP_TIMEOUT = 20.0
LIMA = ZoneInfo("America/Lima")
DOCTOR = "dra-rosa-quispe"
PATIENT = {"name": "Ana Pérez Quispe", "phone": "+51987650042", "document_id": "DNI-40404040"}


def _environment(overrides: Mapping[str, str]) -> dict[str, str]:
    """The test's environment without any citas or AWS setting, plus `overrides`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CITAS_", "AWS_"))}
    env["PYTHONUNBUFFERED"] = "1"
    # The suite runs at any hour: messages must not wait for 08:00 (see tests/e2e/conftest.py).
    env["CITAS_QUIET_HOURS"] = "off"
    env.update(overrides)
    return env


def _default_sigint() -> None:
    # A test runner started in the background inherits an ignored SIGINT, and bash cannot
    # trap a signal ignored on entry: give the script the terminal's Ctrl-C back.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _state(pid: int) -> str | None:
    """The process's state letter from /proc, or None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def _alive(pid: int) -> bool:
    state = _state(pid)
    return state is not None and state not in {"Z", "X"}


def _group_members(pgid: int) -> dict[int, str]:
    """pid -> command line of every live process whose process group is `pgid`."""
    members: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] not in {"Z", "X"}:
            members[int(entry.name)] = cmdline.strip()
    return members


def _wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout:.0f}s")
        time.sleep(0.05)


@dataclass
class Stack:
    """The running script: its process (a group leader), output files and API."""

    process: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path
    base_url: str = ""
    api_key: str = ""

    def stdout(self) -> list[str]:
        """Whole lines the script and its processes printed on stdout so far.

        A line still being written (the file has no newline after it yet) is left for the
        next look: the processes behind the script write to the file while the test reads it.
        """
        text = self.stdout_path.read_text(encoding="utf-8")
        return text[: text.rfind("\n") + 1].splitlines()

    def output(self) -> str:
        """stdout and stderr so far, for failure messages and log checks."""
        return (
            self.stdout_path.read_text(encoding="utf-8")
            + "\n"
            + self.stderr_path.read_text(encoding="utf-8")
        )

    def notifications(self, appointment_id: str) -> list[str]:
        """Texts of the console SMS lines printed for one appointment."""
        texts = []
        for line in self.stdout():
            if not line.startswith('{"notification"'):
                continue
            message = json.loads(line)
            if message["notification"] == "sms" and message["appointment_id"] == appointment_id:
                texts.append(message["text"])
        return texts

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One API request with the server's key."""
        headers = {"x-api-key": self.api_key, **kwargs.pop("headers", {})}
        return requests.request(method, self.base_url + path, headers=headers, timeout=15, **kwargs)

    def kill(self) -> None:
        """Last resort: SIGKILL the whole group."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """`scripts/run-aws-local.sh` with PORT set to a free port, until its start-up line."""
    if not SCRIPT.is_file():
        pytest.fail(f"{SCRIPT} is missing", pytrace=False)
    stdout_path, stderr_path = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        process = subprocess.Popen(
            [str(SCRIPT)],
            cwd=REPO_ROOT,
            env=_environment({"PORT": str(free_port())}),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
            preexec_fn=_default_sigint,
        )
    running = Stack(process, stdout_path, stderr_path)
    try:
        began = time.monotonic()

        def banner() -> re.Match[str] | None:
            if process.poll() is not None:
                tail = running.output()[-4000:]
                pytest.fail(f"run-aws-local.sh exited with {process.returncode}:\n{tail}")
            return next(filter(None, map(BANNER.match, running.stdout())), None)

        match = _wait_for(banner, START_TIMEOUT, "run-aws-local.sh printed no start-up line")
        running.base_url, running.api_key = match["url"], match["key"]
        print(f"\nrun-aws-local.sh up in {time.monotonic() - began:.1f}s on {running.base_url}")
        yield running
    finally:
        running.kill()


def _next_weekday(days_ahead: int) -> date:
    day = datetime.now(LIMA).date() + timedelta(days=days_ahead)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def test_run_aws_local_serves_the_whole_event_flow_and_ctrl_c_stops_everything(
    stack: Stack,
) -> None:
    emulators = {m["what"]: int(m["pid"]) for m in map(EMULATOR.match, stack.stdout()) if m}
    assert set(emulators) == {"DynamoDB Local", "SQS emulator"}, stack.output()[-3000:]
    serve_pids = [
        pid for pid, cmd in _group_members(stack.process.pid).items() if "citas serve" in cmd
    ]
    assert len(serve_pids) == 1
    assert all(_alive(pid) for pid in [*emulators.values(), *serve_pids])

    # The README's three requests, on the AWS adapters.
    doctor = stack.request("GET", f"/doctors/{DOCTOR}")
    assert doctor.status_code == 200, doctor.text
    day = _next_weekday(2)
    availability = stack.request("GET", f"/doctors/{DOCTOR}/availability?date={day}")
    assert availability.status_code == 200, availability.text
    slots = availability.json()["slots"]
    assert len(slots) >= 4
    booked = stack.request(
        "POST",
        "/appointments",
        headers={"Idempotency-Key": "aws-local-1"},
        json={"doctor_id": DOCTOR, "patient": PATIENT, "start": slots[0]["start"]},
    )
    assert booked.status_code == 201, booked.text
    appointment_id = booked.json()["appointment_id"]

    # Each change: outbox item -> relay -> events FIFO queue -> consumer -> console SMS. Each
    # message is awaited before the next change: a message that no longer holds when it is
    # consumed (a booking already moved or cancelled) is deliberately not sent.
    def messages(count: int, what: str) -> list[str]:
        texts: list[str] = _wait_for(
            lambda: (t := stack.notifications(appointment_id)) and len(t) >= count and t,
            FLOW_TIMEOUT,
            f"the {what} message was not printed",
        )
        return texts

    messages(1, "request")
    moved = stack.request(
        "PATCH", f"/appointments/{appointment_id}", json={"start": slots[1]["start"]}
    )
    assert moved.status_code == 200, moved.text
    messages(2, "reschedule")
    cancelled = stack.request("DELETE", f"/appointments/{appointment_id}")
    assert cancelled.status_code == 200, cancelled.text
    texts = messages(3, "cancellation")
    assert texts[0].startswith("Clínica Demo: Hola, reservaste una cita con Dra. Rosa Quispe")
    assert "(hora de Lima)" in texts[0]
    assert "cambió al" in texts[1]
    assert "fue cancelada." in texts[2]

    # Booking later: the PE worker takes the request from its FIFO queue.
    accepted = stack.request(
        "POST",
        "/appointment-requests",
        json={"doctor_id": DOCTOR, "patient": PATIENT, "start": slots[3]["start"]},
    )
    assert accepted.status_code == 202, accepted.text
    request_id = accepted.json()["request_id"]

    def outcome() -> dict[str, Any] | None:
        reply = stack.request("GET", f"/appointment-requests/{request_id}").json()
        return reply if reply["status"] != "pending" else None

    final = _wait_for(outcome, FLOW_TIMEOUT, "the booking request was not booked")
    assert final["status"] == "booked", final
    _wait_for(
        lambda: stack.notifications(final["appointment_id"]),
        FLOW_TIMEOUT,
        "the booked request's message was not printed",
    )

    # Ctrl-C: SIGINT to the whole foreground group, as a terminal sends it.
    os.killpg(stack.process.pid, signal.SIGINT)
    try:
        status = stack.process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"run-aws-local.sh did not stop within {STOP_TIMEOUT:.0f}s of Ctrl-C")
    assert status == 130
    left = {pid: _state(pid) for pid in [*emulators.values(), *serve_pids] if _alive(pid)}
    assert left == {}, f"still running after Ctrl-C: {left}"
    assert _group_members(stack.process.pid) == {}
    assert stack.stdout()[-1] == "run-aws-local: stopped"

    output = stack.output()
    assert "Traceback" not in output
    for secret in PATIENT.values():
        assert secret not in output, "patient data in the stack's output"


# --- citas provision ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def emulators() -> Iterator[dict[str, str]]:
    """DynamoDB Local and moto's SQS server, as the standard SDK environment names them."""
    try:
        dynamodb = DynamoDBLocal(REPO_ROOT).start(timeout=60)
    except DynamoDBLocalUnavailable as error:
        pytest.fail(f"DynamoDB Local could not start: {error}", pytrace=False)
    sqs = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    sqs.start()
    host, port = sqs.get_host_and_port()
    try:
        yield {
            "AWS_ENDPOINT_URL_DYNAMODB": dynamodb.endpoint_url,
            "AWS_ENDPOINT_URL_SQS": f"http://{host}:{port}",
            # The contract's variable; botocore itself only reads AWS_DEFAULT_REGION.
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "dummy",
            "AWS_SECRET_ACCESS_KEY": "dummy",
        }
    finally:
        sqs.stop()
        dynamodb.stop()


def _provision(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CITAS), "provision", *args],
        cwd=REPO_ROOT,
        env=_environment(env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_citas_provision_twice_succeeds_both_times(emulators: dict[str, str]) -> None:
    first = _provision(emulators)
    assert first.returncode == 0, first.stderr
    second = _provision(emulators)
    assert second.returncode == 0, second.stderr
    resources = [json.loads(line) for line in first.stdout.splitlines()]
    assert [json.loads(line) for line in second.stdout.splitlines()] == resources
    assert {r["name"] for r in resources} == {
        "citas-local",
        "citas-local-events.fifo",
        "citas-local-events-dlq.fifo",
        "citas-local-booking-requests-pe.fifo",
        "citas-local-booking-requests-pe-dlq.fifo",
        "citas-local-booking-requests-cl.fifo",
        "citas-local-booking-requests-cl-dlq.fifo",
    }
    table = next(r for r in resources if r["resource"] == "dynamodb_table")
    assert table["arn"].endswith(":table/citas-local")
    assert all(
        r["url"].startswith(emulators["AWS_ENDPOINT_URL_SQS"])
        for r in resources
        if r["resource"] == "sqs_queue"
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"AWS_ENDPOINT_URL_SQS": f"http://127.0.0.1:{free_port()}"}, "Could not connect"),
        ({"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None}, "credentials"),
        ({"AWS_REGION": None}, "region"),
        ({"AWS_ENDPOINT_URL_SQS": None}, "refusing to create resources on AWS"),
    ],
    ids=["sqs-unreachable", "no-credentials", "no-region", "no-sqs-endpoint"],
)
def test_citas_provision_explains_a_missing_piece_in_one_line(
    emulators: dict[str, str], change: dict[str, str | None], reason: str
) -> None:
    env = {k: v for k, v in {**emulators, **change}.items() if v is not None}
    # No credentials file or instance metadata to fall back on.
    env |= {
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
        "AWS_CONFIG_FILE": "/nonexistent/config",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    result = _provision(env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("citas provision: ")
    assert reason in lines[0]
    assert "Traceback" not in result.stderr
