"""A clinic on the memory backend with a clock that only moves when a test says so."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from adapters.memory.doctors import InMemoryDoctorRepository
from adapters.memory.store import (
    InMemoryAppointmentRepository,
    InMemoryBookingRequestQueue,
    InMemoryBookingRequestRepository,
    InMemoryEventOutbox,
    MemoryStore,
)
from adapters.system import FixedClock, UuidV7Generator
from domain.appointment import Patient
from domain.commands import BookAppointment, RegisterDoctor
from domain.countries import CountryCatalog
from domain.use_cases import Clinic
from tests.unit.http_world import api, booked, clock, container  # noqa: F401 - HTTP API fixtures

LIMA = ZoneInfo("America/Lima")
SANTIAGO = ZoneInfo("America/Santiago")
# A Tuesday morning in Lima; the tests book on the following days.
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=LIMA)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
WEEKDAY_HOURS = {d: [["09:00", "13:00"], ["14:00", "18:00"]] for d in WEEKDAYS}


class World:
    """What a test needs: the clinic and a view of its store and clock."""

    def __init__(self) -> None:
        self.store = MemoryStore()
        self.clock = FixedClock(NOW.astimezone(UTC))
        self.queue = InMemoryBookingRequestQueue()
        self.outbox = InMemoryEventOutbox(self.store)
        self.clinic = Clinic(
            InMemoryAppointmentRepository(self.store, clinic_id="demo"),
            InMemoryDoctorRepository(self.store, clinic_id="demo"),
            InMemoryBookingRequestRepository(self.store, clinic_id="demo"),
            self.queue,
            self.clock,
            UuidV7Generator(),
            CountryCatalog(),
            clinic_id="demo",
        )
        # No notice and a year ahead: these doctors serve the tests of everything but the
        # schedule rules, which test_schedule_rules.py covers with doctors of its own.
        rules = {"min_notice_minutes": 0, "booking_horizon_days": 365}
        self.clinic.register_doctor(
            RegisterDoctor(
                "rosa", "Dra. Rosa Quispe", "PE", WEEKDAY_HOURS, slot_minutes=30, **rules
            )
        )
        self.clinic.register_doctor(
            RegisterDoctor(
                "matias", "Dr. Matías Soto", "CL", WEEKDAY_HOURS, slot_minutes=20, **rules
            )
        )

    def event_types(self, appointment_id: str | None = None) -> list[str]:
        """Types of the outbox events, optionally of one appointment, in commit order."""
        return [
            e.type
            for e in self.store.outbox.values()
            if appointment_id is None or e.appointment_id == appointment_id
        ]


@pytest.fixture
def world() -> World:
    return World()


def at(day: date, hhmm: str, zone: ZoneInfo = LIMA) -> datetime:
    """An aware local time."""
    hours, minutes = map(int, hhmm.split(":"))
    return datetime.combine(day, time(hours, minutes), tzinfo=zone)


def patient(n: int = 1) -> Patient:
    """A distinct patient per number."""
    return Patient(f"Paciente {n}", f"+5198765{n:04d}")


def booking(
    start: datetime, who: int = 1, doctor: str = "rosa", minutes: int | None = None
) -> BookAppointment:
    """A booking command."""
    return BookAppointment(doctor, patient(who), start, minutes)


WED = date(2026, 12, 2)
THU = date(2026, 12, 3)
