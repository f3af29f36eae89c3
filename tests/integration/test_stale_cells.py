"""Stale cells heal at booking time, on DynamoDB Local.

A cell whose owner is gone, no longer active, or no longer covers it (a crash between the two
transactions of a long move, or any other orphan lock) must not refuse that time: the booking
that needs it frees it and goes through. A cell of an active appointment that covers it still
refuses.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from adapters.aws.dynamodb import doctor_cell_pk, patient_cell_pk
from domain.commands import CancelAppointment, RescheduleAppointment
from domain.errors import SlotUnavailable
from tests.integration.aws_world import (
    THU,
    WED,
    Repositories,
    World,
    at,
    booking,
    fresh_table,
    items_by_prefix,
    local_client,
    patient,
)
from tests.support.dynamodb_local import DynamoDBLocal

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

pytestmark = pytest.mark.dynamodb_local


@pytest.fixture
def world(dynamodb_local: DynamoDBLocal) -> Iterator[World]:
    client = local_client(dynamodb_local.endpoint_url)
    table = fresh_table(client)
    yield World(Repositories.dynamodb(table, client))
    client.delete_table(TableName=table)


def _plant(world: World, pk: str, owner: str, cell: datetime) -> None:
    """A cell item as the adapter writes it, held by `owner`, written behind its back."""
    client: DynamoDBClient | None = world.repos.client
    assert client is not None
    client.put_item(
        TableName=world.repos.table,
        Item={
            "pk": {"S": pk},
            "sk": {"S": "LOCK"},
            "appointment_id": {"S": owner},
            "expires_at": {"N": str(int((cell + timedelta(days=1, minutes=5)).timestamp()))},
        },
    )


def _owner(world: World, pk: str) -> str | None:
    assert world.repos.client is not None
    cells = items_by_prefix(world.repos.client, world.repos.table, lambda key: key == pk)
    return str(cells[pk]["appointment_id"]) if pk in cells else None


def test_orphan_cells_are_freed_by_the_booking_that_needs_them(world: World) -> None:
    clinic = world.clinic
    # Owned by a cancelled appointment.
    cancelled = clinic.book(booking(at(WED, "10:00"), who=1))
    clinic.cancel(CancelAppointment(cancelled.appointment_id))
    ten = doctor_cell_pk("rosa", at(WED, "10:00"))
    _plant(world, ten, cancelled.appointment_id, at(WED, "10:00"))
    # Owned by an appointment that moved to another day (a long move's failed cleanup).
    moved = clinic.book(booking(at(WED, "11:00"), who=2))
    clinic.reschedule(RescheduleAppointment(moved.appointment_id, at(THU, "11:00")))
    eleven = [doctor_cell_pk("rosa", at(WED, hhmm)) for hhmm in ("11:00", "11:05", "11:25")]
    for pk, hhmm in zip(eleven, ("11:00", "11:05", "11:25"), strict=True):
        _plant(world, pk, moved.appointment_id, at(WED, hhmm))
    # Owned by an appointment that never was (or is long gone), on the patient's side.
    ghost = patient_cell_pk(patient(4).key, at(WED, "12:00"))
    _plant(world, ghost, "ghost-appointment", at(WED, "12:00"))

    at_ten = clinic.book(booking(at(WED, "10:00"), who=3))
    at_eleven = clinic.book(booking(at(WED, "11:00"), who=3))
    at_noon = clinic.book(booking(at(WED, "12:00"), who=4))

    # The orphans are gone: each cell now belongs to the booking that needed it.
    assert _owner(world, ten) == at_ten.appointment_id
    assert [_owner(world, pk) for pk in eleven] == [at_eleven.appointment_id] * 3
    assert _owner(world, ghost) == at_noon.appointment_id
    # The moved appointment kept its new time.
    assert clinic.get(moved.appointment_id).start == at(THU, "11:00")


def test_a_cell_of_an_active_covering_appointment_still_refuses(world: World) -> None:
    clinic = world.clinic
    holder = clinic.book(booking(at(WED, "09:00"), who=1))
    # Next to it, a stale cell of a cancelled appointment: it does not make the slot free.
    cancelled = clinic.book(booking(at(WED, "09:30"), who=2))
    clinic.cancel(CancelAppointment(cancelled.appointment_id))
    stale = doctor_cell_pk("rosa", at(WED, "09:30"))
    _plant(world, stale, cancelled.appointment_id, at(WED, "09:30"))

    with pytest.raises(SlotUnavailable):
        clinic.book(booking(at(WED, "09:00"), who=3, minutes=60))

    nine = doctor_cell_pk("rosa", at(WED, "09:00"))
    assert _owner(world, nine) == holder.appointment_id
    assert clinic.get(holder.appointment_id).start == at(WED, "09:00")
    # The stale one is freed by the next booking that needs only it.
    freed = clinic.book(booking(at(WED, "09:30"), who=3))
    assert _owner(world, stale) == freed.appointment_id
