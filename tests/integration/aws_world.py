"""Shared helpers of the AWS adapter tests: fresh tables, a clinic on any backend, read-backs."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import boto3
from boto3.dynamodb.types import TypeDeserializer
from botocore.config import Config

from adapters.aws.dynamodb import (
    DynamoDBAppointmentRepository,
    DynamoDBBookingRequestRepository,
    DynamoDBDoctorRepository,
    DynamoDBEventOutbox,
)
from adapters.aws.dynamodb.guards import is_guard, owner_tag, read_guard
from adapters.aws.dynamodb.transaction import Role
from adapters.aws.dynamodb.waitlist import DynamoDBWaitlistRepository
from adapters.aws.resources import TableSpec, load_table_spec, provision_table
from adapters.memory.doctors import InMemoryDoctorRepository
from adapters.memory.store import (
    InMemoryAppointmentRepository,
    InMemoryBookingRequestQueue,
    InMemoryBookingRequestRepository,
    InMemoryEventOutbox,
    MemoryStore,
)
from adapters.memory.waitlist import InMemoryWaitlistRepository
from adapters.system import FixedClock, UuidV7Generator
from domain.appointment import Appointment, Patient
from domain.commands import BookAppointment, RegisterDoctor
from domain.countries import CountryCatalog
from domain.use_cases import Clinic
from ports.repositories import (
    AppointmentRepository,
    BookingRequestRepository,
    DoctorRepository,
    EventOutbox,
    WaitlistRepository,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

LIMA = ZoneInfo("America/Lima")
SANTIAGO = ZoneInfo("America/Santiago")
# A Tuesday morning in Lima; the tests book on the following days.
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=LIMA)
WED = date(2026, 12, 2)
THU = date(2026, 12, 3)
WEEKDAY_HOURS = {
    d: [["09:00", "13:00"], ["14:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")
}
REGION = "us-east-1"


@functools.cache
def table_spec() -> TableSpec:
    """The table of infra/terraform, parsed once per session."""
    return load_table_spec()


def fresh_table(client: DynamoDBClient) -> str:
    """Create a table of the Terraform shape under a new name and return the name."""
    name = f"citas-test-{uuid.uuid4().hex[:12]}"
    provision_table(client, name, table_spec())
    return name


def local_client(endpoint_url: str, pool: int = 10, **config: Any) -> DynamoDBClient:
    """A DynamoDB Local client; `pool` connections for threaded tests."""
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id="dummy",
        aws_secret_access_key="dummy",
        config=Config(
            **{
                "retries": {"mode": "standard", "max_attempts": 3},
                "max_pool_connections": pool,
                **config,
            }
        ),
    )


class Repositories:
    """The four storage ports of one backend."""

    def __init__(
        self,
        appointments: AppointmentRepository,
        doctors: DoctorRepository,
        requests: BookingRequestRepository,
        outbox: EventOutbox,
        waitlist: WaitlistRepository | None = None,
    ) -> None:
        self.appointments = appointments
        self.doctors = doctors
        self.requests = requests
        self.outbox = outbox
        self.waitlist = waitlist
        # Set on the DynamoDB backends, for read-backs.
        self.client: DynamoDBClient | None = None
        self.table = ""

    @classmethod
    def memory(cls) -> Repositories:
        store = MemoryStore()
        return cls(
            InMemoryAppointmentRepository(store, clinic_id="demo"),
            InMemoryDoctorRepository(store, clinic_id="demo"),
            InMemoryBookingRequestRepository(store, clinic_id="demo"),
            InMemoryEventOutbox(store),
            InMemoryWaitlistRepository(store, clinic_id="demo"),
        )

    @classmethod
    def dynamodb(cls, table: str, client: DynamoDBClient) -> Repositories:
        repos = cls(
            DynamoDBAppointmentRepository(table, client, clinic_id="demo"),
            DynamoDBDoctorRepository(table, client, clinic_id="demo"),
            DynamoDBBookingRequestRepository(table, client, clinic_id="demo"),
            DynamoDBEventOutbox(table, client, retry_delay=0.001),
            DynamoDBWaitlistRepository(table, client, clinic_id="demo"),
        )
        repos.client, repos.table = client, table
        return repos


class World:
    """A clinic on some backend, two doctors registered, the clock at NOW."""

    def __init__(self, repos: Repositories, *, register: bool = True) -> None:
        self.repos = repos
        self.clock = FixedClock(NOW.astimezone(UTC))
        self.queue = InMemoryBookingRequestQueue()
        self.clinic = Clinic(
            repos.appointments,
            repos.doctors,
            repos.requests,
            self.queue,
            self.clock,
            UuidV7Generator(),
            CountryCatalog(),
            clinic_id="demo",
        )
        if register:
            self.clinic.register_doctor(
                RegisterDoctor("rosa", "Dra. Rosa Quispe", "PE", WEEKDAY_HOURS, slot_minutes=30)
            )
            self.clinic.register_doctor(
                RegisterDoctor("matias", "Dr. Matías Soto", "CL", WEEKDAY_HOURS, slot_minutes=20)
            )

    def event_types(self, appointment_id: str | None = None) -> list[str]:
        """Types of the pending outbox events, optionally of one appointment, oldest first."""
        return [
            e.type
            for e in self.repos.outbox.pending(1000)
            if appointment_id is None or e.appointment_id == appointment_id
        ]


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


_deserializer = TypeDeserializer()


def all_items(client: DynamoDBClient, table: str) -> list[dict[str, Any]]:
    """Every item of the table (a test-only Scan, to read back what the adapters wrote)."""
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = client.scan(**kwargs)
        items.extend(
            {k: _deserializer.deserialize(v) for k, v in item.items()} for item in page["Items"]
        )
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def items_by_prefix(
    client: DynamoDBClient, table: str, keep: Callable[[str], bool] = lambda pk: True
) -> dict[str, dict[str, Any]]:
    """Items of the table by partition key, filtered on the key."""
    return {str(i["pk"]): i for i in all_items(client, table) if keep(str(i["pk"]))}


def held_time(client: DynamoDBClient, table: str) -> dict[str, str]:
    """Every cell the day guards hold, as `<clinic>#DOC|PAT#<doctor or patient key>#<UTC cell>`."""
    held: dict[str, str] = {}
    for item in all_items(client, table):
        if is_guard(str(item["pk"])):
            clinic = str(item["pk"]).split("#", 1)[0]
            role, owner, cells = read_guard(item)
            kind = "DOC" if role is Role.DOCTOR_GUARD else "PAT"
            for cell, tag in cells.items():
                held[f"{clinic}#{kind}#{owner}#{cell:%Y-%m-%dT%H:%MZ}"] = tag
    return held


def time_of(appointment: Appointment) -> dict[str, str]:
    """What `held_time` shows for one active appointment: its doctor's and patient's cells."""
    tag = owner_tag(appointment.appointment_id)
    clinic, doctor_id, key = appointment.clinic_id, appointment.doctor_id, appointment.patient.key
    doctor = {f"{clinic}#DOC#{doctor_id}#{c:%Y-%m-%dT%H:%MZ}" for c in appointment.doctor_cells()}
    patient = {f"{clinic}#PAT#{key}#{c:%Y-%m-%dT%H:%MZ}" for c in appointment.patient_cells()}
    return dict.fromkeys(doctor | patient, tag) if appointment.is_active else {}
