"""Two clinics on one `citas serve`, over real HTTP: each key sees and changes only its own.

The server is started with two `--clinic` options; both clinics register the same doctor id,
book the same time for the same phone under the same idempotency key, and each one's ids are
`404` to the other, exactly as ids that do not exist.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.e2e.conftest import Api, Launcher, RunningServer

SOL_KEY = "sol-e2e-key"
LUNA_KEY = "luna-e2e-key"
HOURS = {d: [["08:00", "20:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
# Days ahead of the real clock (the server's): within every doctor's horizon, holidays worked.
_DAY = (datetime.now(ZoneInfo("America/Lima")) + timedelta(days=10)).date()
D0, D1, D2 = (str(_DAY + timedelta(days=n)) for n in range(3))
START = f"{D0}T10:00:00-05:00"
PATIENT = {"name": "Ana Pérez", "phone": "+51987650011"}


@pytest.fixture(scope="module")
def two_clinics(start_citas: Launcher) -> Iterator[RunningServer]:
    """One server, two clinics (`luna` without a name: it gets the default one)."""
    running = start_citas(
        "--no-demo", "--clinic", f"sol:{SOL_KEY}:Clínica Sol", "--clinic", f"luna:{LUNA_KEY}"
    )
    yield running
    running.stop()


@pytest.fixture
def sol(two_clinics: RunningServer) -> Iterator[Api]:
    client = Api(two_clinics.base_url, SOL_KEY)
    yield client
    client.close()


@pytest.fixture
def luna(two_clinics: RunningServer) -> Iterator[Api]:
    client = Api(two_clinics.base_url, LUNA_KEY)
    yield client
    client.close()


def _doctor(api: Api, doctor_id: str, name: str) -> None:
    reply = api.put(
        f"/doctors/{doctor_id}",
        json={"name": name, "country": "PE", "working_hours": HOURS, "works_on_holidays": True},
    )
    assert reply.status_code in (200, 201), reply.text


def _book(api: Api, doctor_id: str, key: str, notes: str, start: str = START) -> dict[str, Any]:
    body = {"doctor_id": doctor_id, "patient": PATIENT, "start": start, "notes": notes}
    reply = api.post("/appointments", json=body, headers={"Idempotency-Key": key})
    assert reply.status_code == 201, reply.text
    return dict(reply.json())


def test_each_key_names_its_clinic(two_clinics: RunningServer, sol: Api, luna: Api) -> None:
    assert sol.get("/clinic").json() == {"clinic_id": "sol", "name": "Clínica Sol"}
    assert luna.get("/clinic").json() == {"clinic_id": "luna", "name": "Clínica Luna"}
    # The banner names the first clinic's key; a log line names each clinic, never its key.
    assert two_clinics.api_key == SOL_KEY
    served = [
        json.loads(line)
        for line in two_clinics.stderr_lines()
        if line.startswith("{") and '"clinic served"' in line
    ]
    assert [(s["clinic_id"], s["name"]) for s in served] == [
        ("sol", "Clínica Sol"),
        ("luna", "Clínica Luna"),
    ]
    output = two_clinics.stdout_lines() + two_clinics.stderr_lines()
    assert not any(LUNA_KEY in line for line in output)


def test_a_key_of_no_clinic_is_forbidden(sol: Api) -> None:
    for key in ("local-dev-key", SOL_KEY + "x", ""):
        reply = sol.get("/clinic", key=key)
        assert (reply.status_code, reply.json()) == (403, {"message": "Forbidden"})


def test_two_clinics_share_ids_phones_times_and_keys_without_meeting(
    two_clinics: RunningServer, sol: Api, luna: Api
) -> None:
    _doctor(sol, "dr-perez", "Dr. Pérez de Sol")
    _doctor(luna, "dr-perez", "Dra. Pérez de Luna")
    assert sol.get("/doctors/dr-perez").json()["name"] == "Dr. Pérez de Sol"
    assert luna.get("/doctors/dr-perez").json()["name"] == "Dra. Pérez de Luna"

    # Same doctor id, same phone, same time, same key, other body: neither blocks the other.
    in_sol = _book(sol, "dr-perez", "same-key", "sol")
    in_luna = _book(luna, "dr-perez", "same-key", "luna")
    assert in_sol["appointment_id"] != in_luna["appointment_id"]
    # The key replays within its own clinic only.
    assert _book(sol, "dr-perez", "same-key", "sol")["appointment_id"] == in_sol["appointment_id"]

    day = {"doctor_id": "dr-perez", "date": D0}
    listed_sol = sol.get("/appointments", params=day).json()["items"]
    listed_luna = luna.get("/appointments", params=day).json()["items"]
    assert [a["appointment_id"] for a in listed_sol] == [in_sol["appointment_id"]]
    assert [a["appointment_id"] for a in listed_luna] == [in_luna["appointment_id"]]
    by_status = {"country": "PE", "status": "requested"}
    assert in_luna["appointment_id"] not in {
        a["appointment_id"] for a in sol.get("/appointments", params=by_status).json()["items"]
    }

    # The patient hears from each clinic in its own name, about its own appointment.
    texts = _notifications(two_clinics, {in_sol["appointment_id"], in_luna["appointment_id"]})
    assert texts[in_sol["appointment_id"]].startswith("Clínica Sol: Hola, reservaste una cita")
    assert texts[in_luna["appointment_id"]].startswith("Clínica Luna: Hola, reservaste una cita")


def test_another_clinics_id_is_not_found_exactly_as_a_missing_one(sol: Api, luna: Api) -> None:
    _doctor(sol, "dr-solo", "Dr. Solo")
    theirs = _book(sol, "dr-solo", f"k-{uuid.uuid4()}", "x", f"{D2}T10:00:00-05:00")
    their_id = theirs["appointment_id"]
    missing = str(uuid.uuid4())
    expected = json.loads(luna.get(f"/appointments/{missing}").text.replace(missing, their_id))

    attempts = [
        luna.get(f"/appointments/{their_id}"),
        luna.patch(f"/appointments/{their_id}", json={"start": f"{D0}T11:00:00-05:00"}),
        luna.post(f"/appointments/{their_id}/status", json={"status": "confirmed"}),
        luna.delete(f"/appointments/{their_id}"),
    ]
    for reply in attempts:
        assert (reply.status_code, reply.json()) == (404, expected)
    assert luna.get("/doctors/dr-solo").status_code == 404
    # Nothing of sol's changed.
    again = sol.get(f"/appointments/{their_id}").json()
    assert (again["status"], again["version"]) == ("requested", 1)


def test_a_booking_request_is_its_clinics_only(sol: Api, luna: Api) -> None:
    _doctor(sol, "dr-async", "Dr. Async")
    body = {"doctor_id": "dr-async", "patient": PATIENT, "start": f"{D1}T10:00:00-05:00"}
    accepted = sol.post("/appointment-requests", json=body)
    assert accepted.status_code == 202, accepted.text
    request_id = accepted.json()["request_id"]
    assert luna.get(f"/appointment-requests/{request_id}").status_code == 404
    assert sol.get(f"/appointment-requests/{request_id}").status_code == 200


def _notifications(server: RunningServer, wanted: set[str]) -> dict[str, str]:
    """Appointment id -> the text sent, once the relay has printed one for each of `wanted`."""
    deadline = time.monotonic() + 15
    while True:
        found = {}
        for line in server.stdout_lines():
            if line.startswith("{") and '"notification"' in line:
                note = json.loads(line)
                found[note["appointment_id"]] = note["text"]
        if wanted <= set(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        (["--clinic", "Sol:sol-key-1"], {}, "clinic id 'Sol'"),
        (["--clinic", "sol"], {}, "without a key"),
        (["--clinic", "sol:bad key"], {}, "the key of clinic 'sol'"),
        (["--clinic", "sol:k-1", "--clinic", "luna:k-1"], {}, "shares its key"),
        (["--clinic", "sol:k-1", "--clinic", "sol:k-2"], {}, "'sol' is named twice"),
        ([], {"CITAS_CLINICS": "sol=k-1,luna=k-1"}, "shares its key"),
        ([], {"CITAS_CLINICS": "sol"}, "CITAS_CLINICS is a comma-separated list of id=key"),
        ([], {"CITAS_CLINICS": "x=k-1"}, "clinic id 'x'"),
        # A key given where an id:key belongs is never echoed.
        (["--clinic", "s3cret-key"], {}, "without a key"),
        ([], {"CITAS_CLINICS": "sol:s3cret-key"}, "part 1 is not"),
    ],
)
def test_a_malformed_clinic_stops_the_server_with_a_clear_message(
    citas_script: Path, args: list[str], env: dict[str, str], says: str
) -> None:
    done = subprocess.run(
        [str(citas_script), "serve", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=_env(env),
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert says in done.stderr
    assert "Traceback" not in done.stderr
    # A key is a secret: no start-up error quotes one.
    assert "k-2" not in done.stderr and "bad key" not in done.stderr
    assert "s3cret" not in done.stderr


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CITAS_", "AWS_"))}
    env.update(extra)
    return env
