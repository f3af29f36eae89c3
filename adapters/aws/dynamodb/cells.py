"""Cell locks: a doctor's or a patient's time as 5-minute items, taken and freed atomically.

Uniqueness never rests on a GSI (they are eventually consistent): the time an appointment
holds is a set of `DOCSLOT#<doctor>#<cell>` / `PATSLOT#<patient key>#<cell>` items (sort key
`LOCK`, `appointment_id`, `expires_at` = the cell's end + 1 day) written with
`attribute_not_exists(pk)` in the same transaction as the appointment. Everything about cells
lives here and in `cell_repair`, so that another guard can replace them in one place.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from botocore.exceptions import ClientError

from adapters.aws.dynamodb.keys import LOCK_SK, TRANSACTION_LIMIT, epoch
from adapters.aws.dynamodb.table import Table
from adapters.aws.dynamodb.transaction import Cancelled, Role, Transaction
from domain.appointment import Appointment
from domain.errors import TemporarilyUnavailable
from domain.schedule import CELL_MINUTES

# The package's logger, as before the split, so log routing and filters stay the same.
log = logging.getLogger("adapters.aws.dynamodb")

CELL_TTL: Final = timedelta(days=1)
# The roles of the cell Puts a booking or a move makes, and of the deletes that free them.
CELL_ROLES: Final = (Role.DOCTOR_CELL, Role.PATIENT_CELL)
FREED: Final = {
    Role.DOCTOR_CELL: Role.DOCTOR_CELL_FREED,
    Role.PATIENT_CELL: Role.PATIENT_CELL_FREED,
}
# What an appointment holds: partition key -> (the cell's role, the cell's start).
Cells = dict[str, tuple[Role, datetime]]


def _cell_stamp(cell: datetime) -> str:
    return cell.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def doctor_cell_pk(doctor_id: str, cell: datetime) -> str:
    """The partition key of a doctor's time cell."""
    return f"DOCSLOT#{doctor_id}#{_cell_stamp(cell)}"


def patient_cell_pk(patient_key: str, cell: datetime) -> str:
    """The partition key of a patient's time cell (the key is a hash of the phone)."""
    return f"PATSLOT#{patient_key}#{_cell_stamp(cell)}"


def cell_item(pk: str, cell: datetime, appointment_id: str) -> dict[str, Any]:
    """The lock item of one cell, expiring a day after the cell ends."""
    expires = cell + timedelta(minutes=CELL_MINUTES) + CELL_TTL
    return {"pk": pk, "sk": LOCK_SK, "appointment_id": appointment_id, "expires_at": epoch(expires)}


def held_cells(appointment: Appointment) -> Cells:
    """Partition key -> (role, cell) of every cell the appointment holds; none when final."""
    if not appointment.is_active:
        return {}
    held: Cells = {
        doctor_cell_pk(appointment.doctor_id, cell): (Role.DOCTOR_CELL, cell)
        for cell in appointment.doctor_cells()
    }
    held.update(
        {
            patient_cell_pk(appointment.patient.key, cell): (Role.PATIENT_CELL, cell)
            for cell in appointment.patient_cells()
        }
    )
    return held


def take_new(tx: Transaction, appointment: Appointment) -> None:
    """Add a Put of every cell of a new appointment, refused if anyone holds it."""
    me = appointment.appointment_id
    for pk, (role, cell) in sorted(held_cells(appointment).items()):
        tx.put(cell_item(pk, cell, me), role, "attribute_not_exists(pk)")


def take_moved(tx: Transaction, me: str, old: Cells, new: Cells) -> None:
    """Add a Put of each cell in `new` but not in `old`; own cells are accepted too."""
    # A leftover of this appointment (a freeing that failed) is still its own.
    for pk in sorted(new.keys() - old.keys()):
        role, cell = new[pk]
        tx.put(
            cell_item(pk, cell, me),
            role,
            "attribute_not_exists(pk) OR appointment_id = :me",
            {":me": me},
        )


def free(tx: Transaction, pk: str, role: Role, me: str) -> None:
    """Add the Delete of one of `me`'s cells (`role` is the cell's, not the freeing's)."""
    # A cell past its TTL may already be gone: freeing it is then a no-op, not a failure.
    tx.delete(
        pk, LOCK_SK, FREED[role], "attribute_not_exists(pk) OR appointment_id = :me", {":me": me}
    )


def free_leftovers(table: Table, me: str, leftovers: Sequence[str], old: Cells) -> None:
    """Free the old cells that did not fit in a move's transaction, in follow-up ones."""
    # The change is committed: failing now would report "nothing written" falsely, so a
    # cell that cannot be freed is logged and left to its TTL.
    for start in range(0, len(leftovers), TRANSACTION_LIMIT):
        tx = Transaction(table.table_name)
        for pk in leftovers[start : start + TRANSACTION_LIMIT]:
            free(tx, pk, old[pk][0], me)
        try:
            table.transact(tx)
        except (Cancelled, TemporarilyUnavailable, ClientError):
            log.warning(
                "could not free the old cells of a rescheduled appointment",
                extra={"fields": {"appointment_id": me, "cells": len(tx)}},
            )
