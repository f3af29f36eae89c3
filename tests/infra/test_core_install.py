"""The core install (`pip install citas`, no extras) runs the domain on the memory adapters.

A wheel of this checkout goes into a fresh virtual environment with its core dependencies
only, from the package index pip is configured with (PyPI unless told otherwise). That
environment's interpreter, outside the repository and without PYTHONPATH, then books,
reschedules and cancels an appointment, and reads Peru's holidays through
adapters/holidays.py. boto3, Powertools, punq and python-hcl2 must be absent: they belong to
the extras.

It costs the network and about 10-20 s (a setuptools build, one install), hence the
`network` marker. Without an index it fails, never skips, like the DynamoDB Local tests.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.network, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]
# What setuptools needs to build the wheel: pyproject.toml names README.md as the readme.
SOURCES = ("pyproject.toml", "README.md", "domain", "ports", "adapters", "entrypoints")
# Extras only; finding one of them means a core dependency pulls it in again.
NOT_IN_CORE = ("boto3", "botocore", "aws_lambda_powertools", "hcl2", "punq")
# holidays brings python-dateutil, which brings six.
CORE_DISTRIBUTIONS = [
    "attrs",
    "citas",
    "holidays",
    "jinja2",
    "markupsafe",
    "python-dateutil",
    "six",
    "tzdata",
]
PIP_TIMEOUT = 180
# Offline, pip would retry each index request for minutes; fail within the test's budget. As
# variables, so that the pip which installs the build dependencies obeys them too.
PIP_NETWORK = {"PIP_RETRIES": "1", "PIP_TIMEOUT": "30", "PIP_DEFAULT_TIMEOUT": "30"}

_CHECK = r"""
import importlib.metadata
import importlib.util
import json
import sys
import zoneinfo
from datetime import UTC, date, datetime

# Like the Lambda image: no system zone database, so the rules must come from tzdata.
zoneinfo.reset_tzpath(to=[])
found = [m for m in json.loads(sys.argv[1]) if importlib.util.find_spec(m) is not None]

import domain
from adapters.holidays import LibraryHolidayCalendar
from adapters.memory.doctors import InMemoryDoctorRepository
from adapters.memory.store import (
    InMemoryAppointmentRepository,
    InMemoryBookingRequestQueue,
    InMemoryBookingRequestRepository,
    MemoryStore,
)
from adapters.system import FixedClock, UuidV7Generator
from domain.appointment import Patient
from domain.commands import (
    BookAppointment,
    CancelAppointment,
    RegisterDoctor,
    RescheduleAppointment,
)
from domain.countries import CountryCatalog
from domain.use_cases import Clinic

LIMA = zoneinfo.ZoneInfo("America/Lima")
store = MemoryStore()
clock = FixedClock(datetime(2026, 12, 1, 13, 0, tzinfo=UTC))
clinic = Clinic(
    InMemoryAppointmentRepository(store, clinic_id="demo"),
    InMemoryDoctorRepository(store, clinic_id="demo"),
    InMemoryBookingRequestRepository(store, clinic_id="demo"),
    InMemoryBookingRequestQueue(),
    clock,
    UuidV7Generator(),
    CountryCatalog(),
    clinic_id="demo",
)
hours = {d: [["09:00", "13:00"], ["14:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
clinic.register_doctor(RegisterDoctor("rosa", "Dra. Rosa Quispe", "PE", hours, slot_minutes=30))


def seen(appointment):
    zone = zoneinfo.ZoneInfo(appointment.time_zone)
    return {
        "status": str(appointment.status),
        "version": appointment.version,
        "start": appointment.start.isoformat(),
        "end": appointment.end.isoformat(),
        "local_start": appointment.start.astimezone(zone).isoformat(),
    }


patient = Patient("Paciente 1", "+51987650001")
booked = clinic.book(BookAppointment("rosa", patient, datetime(2026, 12, 2, 9, 30, tzinfo=LIMA)))
moved = clinic.reschedule(
    RescheduleAppointment(booked.appointment_id, datetime(2026, 12, 3, 15, 0, tzinfo=LIMA))
)
cancelled = clinic.cancel(CancelAppointment(booked.appointment_id, reason="no puede venir"))
peru = LibraryHolidayCalendar().holidays("PE", 2026)
print("RESULT " + json.dumps({
    "found": found,
    "domain": domain.__file__,
    "prefix": sys.prefix,
    "distributions": sorted(d.metadata["Name"].lower() for d in importlib.metadata.distributions()),
    "booked": seen(booked),
    "moved": seen(moved),
    "cancelled": seen(cancelled),
    "stored": seen(clinic.get(booked.appointment_id)),
    "holidays": {
        "fiestas_patrias": [peru[date(2026, 7, 28)], peru[date(2026, 7, 29)]],
        "count": len(peru),
        "library": importlib.util.find_spec("holidays").origin,
    },
}))
"""


def _environment(**extra: str) -> dict[str, str]:
    # Nothing of the project's own interpreter may leak in: no PYTHONPATH (the suite may run
    # with one pointing at the repository), no PYTHONHOME, no active venv.
    kept = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PYTHON") and k not in ("VIRTUAL_ENV", "__PYVENV_LAUNCHER__")
    }
    return {**kept, **extra}


def _run(what: str, command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=PIP_TIMEOUT,
            check=False,
            cwd=cwd,
            env=_environment(**PIP_NETWORK),
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{what}: no answer within {PIP_TIMEOUT}s: {' '.join(command)}", pytrace=False)
    if done.returncode != 0:
        pytest.fail(
            f"{what} failed (exit {done.returncode}). This test installs from the package index"
            " pip is configured with (PyPI by default) and needs the network to it.\n"
            f"$ {' '.join(command)}\n{done.stdout[-3000:]}{done.stderr[-3000:]}",
            pytrace=False,
        )
    return done


def _in_venv(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # Run from outside the repository with a clean environment: only the venv's own install.
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
        env=_environment(),
    )


@pytest.fixture(scope="module")
def core_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("core-install")
    # Built from a copy: setuptools writes build/ and *.egg-info next to the sources.
    source = work / "src"
    source.mkdir()
    for name in SOURCES:
        origin = ROOT / name
        if origin.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(origin, source / name, ignore=ignore)
        else:
            shutil.copy2(origin, source / name)
    wheels = work / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    _run("building the wheel", [*pip, "wheel", "--no-deps", "-w", str(wheels), str(source)], work)
    (wheel,) = wheels.glob("citas-*.whl")

    venv = work / "venv"
    # No pip inside: this venv must hold the core install and nothing else, and the suite's
    # pip can install into it (`--python`) without the seconds ensurepip takes.
    _run("creating the venv", [sys.executable, "-m", "venv", "--without-pip", str(venv)], work)
    python = venv / "bin" / "python"
    _run("installing the wheel", [*pip, "--python", str(python), "install", str(wheel)], work)

    script = work / "check_core.py"
    script.write_text(_CHECK, encoding="utf-8")
    done = _in_venv([str(python), str(script), json.dumps(NOT_IN_CORE)], work)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stdout[-4000:] + done.stderr[-4000:]
    result: dict[str, Any] = json.loads(lines[-1].removeprefix("RESULT "))
    # The console script comes with every install; its commands need the cli extra.
    serve = _in_venv([str(venv / "bin" / "citas"), "serve", "--port", "0"], work)
    result["serve"] = {"exit": serve.returncode, "stderr": serve.stderr}
    return result


def test_the_core_install_holds_the_project_and_its_core_dependencies_only(
    core_run: dict[str, Any],
) -> None:
    assert core_run["distributions"] == CORE_DISTRIBUTIONS
    assert core_run["found"] == [], f"importable without an extra: {core_run['found']}"


def test_the_domain_comes_from_the_installed_wheel_not_the_repository(
    core_run: dict[str, Any],
) -> None:
    assert Path(core_run["domain"]).is_relative_to(core_run["prefix"])
    assert not Path(core_run["domain"]).is_relative_to(ROOT)


def test_it_books_reschedules_and_cancels_on_the_memory_adapters(
    core_run: dict[str, Any],
) -> None:
    # Times are kept in UTC; Lima is UTC-5 all year (its rules from tzdata, as on Lambda).
    assert core_run["booked"] == {
        "status": "requested",
        "version": 1,
        "start": "2026-12-02T14:30:00+00:00",
        "end": "2026-12-02T15:00:00+00:00",
        "local_start": "2026-12-02T09:30:00-05:00",
    }
    moved = {
        "status": "requested",
        "version": 2,
        "start": "2026-12-03T20:00:00+00:00",
        "end": "2026-12-03T20:30:00+00:00",
        "local_start": "2026-12-03T15:00:00-05:00",
    }
    assert core_run["moved"] == moved
    assert core_run["cancelled"] == {**moved, "status": "cancelled", "version": 3}
    assert core_run["stored"] == core_run["cancelled"]


def test_the_command_on_a_core_install_says_which_extra_it_needs(
    core_run: dict[str, Any],
) -> None:
    assert core_run["serve"]["exit"] == 2
    assert "pip install 'citas[cli]'" in core_run["serve"]["stderr"]
    assert "Traceback" not in core_run["serve"]["stderr"]


def test_the_holiday_adapter_runs_on_the_core_install(core_run: dict[str, Any]) -> None:
    assert core_run["holidays"]["fiestas_patrias"] == [
        "Día de la Independencia",
        "Día de la Gran Parada Militar",
    ]
    assert core_run["holidays"]["count"] == 17
    assert Path(core_run["holidays"]["library"]).is_relative_to(core_run["prefix"])
