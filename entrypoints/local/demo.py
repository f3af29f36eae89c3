"""The two demo doctors of `make run`: one clinic in Lima, one in Santiago de Chile."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from domain.commands import RegisterDoctor
from domain.errors import ValidationError
from domain.schedule import Doctor

log = logging.getLogger("local.demo")

_LIMA_DAY = [["09:00", "13:00"], ["14:00", "18:00"]]
_SANTIAGO_DAY = [["08:30", "12:30"], ["15:00", "19:00"]]

DEMO_DOCTORS: tuple[RegisterDoctor, ...] = (
    RegisterDoctor(
        doctor_id="dra-rosa-quispe",
        name="Dra. Rosa Quispe",
        country="PE",
        time_zone="America/Lima",
        slot_minutes=30,
        working_hours={
            **{day: _LIMA_DAY for day in ("mon", "tue", "wed", "thu", "fri")},
            "sat": [["09:00", "13:00"]],
        },
    ),
    RegisterDoctor(
        doctor_id="dr-matias-soto",
        name="Dr. Matías Soto",
        country="CL",
        time_zone="America/Santiago",
        slot_minutes=20,
        working_hours={day: _SANTIAGO_DAY for day in ("mon", "tue", "wed", "thu", "fri")},
    ),
)


class DoctorRegistry(Protocol):
    """What the demo needs of `Clinic`."""

    def register_doctor(self, command: RegisterDoctor) -> tuple[Doctor, bool]:
        """Create or replace a doctor."""
        ...


def register_demo_doctors(
    clinic: DoctorRegistry, doctors: Sequence[RegisterDoctor] = DEMO_DOCTORS
) -> list[Doctor]:
    """Register the demo doctors whose country is served; returns those registered."""
    registered = []
    for command in doctors:
        try:
            doctor, _ = clinic.register_doctor(command)
        except ValidationError as error:
            # E.g. CITAS_COUNTRIES=PE: the Chilean demo doctor has no country to live in.
            log.warning(
                "demo doctor skipped",
                extra={"fields": {"doctor_id": command.doctor_id, "reason": error.message}},
            )
            continue
        registered.append(doctor)
    return registered
