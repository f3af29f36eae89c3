"""The plan of `citas migrate`: what one read of a table says must be written and deleted.

Pure: it reads plain items and decides; `adapters.aws.migrate` reads the table, applies the
plan and reports. See that module for what earlier releases left and what becomes of it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Final, TypeVar

from attrs import define, field, frozen

from adapters.aws.dynamodb.guards import (
    GUARD_PREFIXES,
    GUARD_SK,
    guard_expiry,
    held,
    is_guard,
    owner_tag,
    parse_guard_pk,
    stored_cells,
)
from adapters.aws.dynamodb.items import (
    appointment_from_item,
    appointment_to_item,
    doctor_from_item,
    doctor_to_item,
    event_from_item,
    event_to_item,
    idempotency_from_item,
    idempotency_to_item,
    request_from_item,
    request_to_item,
)
from adapters.aws.dynamodb.keys import (
    APPOINTMENT_SK,
    BATCH_WRITE_LIMIT,
    DOCTOR_SK,
    EVENT_SK,
    IDEMPOTENCY_SK,
    LOCK_SK,
    REQUEST_SK,
    clinic_of,
    epoch,
)
from domain.appointment import Appointment
from domain.errors import ValidationError

if TYPE_CHECKING:
    pass

T = TypeVar("T")

EXIT_OK: Final = 0
EXIT_CONFLICT: Final = 1
EXIT_FAILED: Final = 2
LEGACY_CELL_PREFIXES: Final = ("DOCSLOT#", "PATSLOT#")
OUTBOX_PREFIX: Final = "OUTBOX#"
# Cells per UpdateItem: each costs a name, a value and a comparison, and DynamoDB allows 300
# operators per expression.
CELLS_PER_UPDATE: Final = 80
DELETES_PER_BATCH: Final = BATCH_WRITE_LIMIT
APPOINTMENTS: Final = "appointments"
DOCTORS: Final = "doctors"
REQUESTS: Final = "requests"
IDEMPOTENCY: Final = "idempotency"
# The kinds a release before clinics stored under bare keys: (pk prefix, sk) -> kind.
UNPREFIXED_KINDS: Final = {
    ("APPT#", APPOINTMENT_SK): APPOINTMENTS,
    ("DOCTOR#", DOCTOR_SK): DOCTORS,
    ("REQ#", REQUEST_SK): REQUESTS,
    ("IDEM#", IDEMPOTENCY_SK): IDEMPOTENCY,
}
MOVED_KINDS: Final = (APPOINTMENTS, DOCTORS, REQUESTS, IDEMPOTENCY)
KIND_LABELS: Final = {
    APPOINTMENTS: "appointments",
    DOCTORS: "doctors",
    REQUESTS: "booking requests",
    IDEMPOTENCY: "idempotency keys",
}
# Kinds whose ids are unique across clinics: one copy under another clinic is an earlier
# run's, given another `--clinic`.
GLOBAL_ID_KINDS: Final = (APPOINTMENTS, REQUESTS)
CLINIC_RULE: Final = "a clinic id is 2-40 lower-case letters, digits or '-'"
MIGRATE_HELP: Final = (
    "Bring a table written by any earlier release (per-cell locks, or the unprefixed keys of "
    "the release before clinics) to this release's layout, idempotently. The migration is "
    "offline: stop the API and its workers first."
)


class CannotMigrate(ValueError):
    """The table cannot be migrated as asked; the message says what to do (no patient data)."""


class ChangedMeanwhile(Exception):
    """An item was written by someone else while the migration ran."""


@define
class GuardPlan:
    """What one guard item holds now and must hold after the migration."""

    pk: str
    day: date
    have: dict[str, str] = field(factory=dict)
    want: dict[str, str] = field(factory=dict)

    def changes(self) -> tuple[dict[str, str], list[str]]:
        """The cells to set (name -> tag) and the cells to remove."""
        sets = {name: tag for name, tag in self.want.items() if self.have.get(name) != tag}
        removes = sorted(name for name in self.have if name not in self.want)
        return sets, removes


@frozen
class Move:
    """One unprefixed item to copy under its clinic key, then delete."""

    kind: str
    old_pk: str
    old_sk: str
    item: dict[str, Any]
    # The copy is in the table already (an interrupted run made it): only the delete is left.
    copied: bool


@frozen
class OutboxUpdate:
    """A pending outbox event that gets its clinic, in its envelope and as an attribute."""

    pk: str
    envelope_was: str
    envelope: str
    clinic_id: str


@define
class Plan:
    """Everything the migration will write, made from one read of the table."""

    clinic: str | None = None
    guards: dict[str, GuardPlan] = field(factory=dict)
    legacy_cells: list[str] = field(factory=list)
    unprefixed_guards: list[str] = field(factory=list)
    moves: list[Move] = field(factory=list)
    outbox: list[OutboxUpdate] = field(factory=list)
    clinics: set[str] = field(factory=set)
    appointments: int = 0
    active: int = 0
    past: int = 0
    conflicts: list[dict[str, Any]] = field(factory=list)

    def report(self) -> dict[str, Any]:
        """Counts of what the plan changes, for the operator."""
        changes = [g.changes() for g in self.guards.values()]
        moved = Counter(move.kind for move in self.moves)
        guards_to_update = sum(1 for sets, removes in changes if sets or removes)
        return {
            "clinic": self.clinic,
            "clinics": sorted(self.clinics),
            "appointments": self.appointments,
            "active": self.active,
            "active_past_their_guards": self.past,
            "guards_to_update": guards_to_update,
            "cells_to_set": sum(len(sets) for sets, _ in changes),
            "cells_to_remove": sum(len(removes) for _, removes in changes),
            "legacy_cells_to_delete": len(self.legacy_cells),
            "unprefixed_guards_to_delete": len(self.unprefixed_guards),
            **{f"{kind}_moved": moved[kind] for kind in MOVED_KINDS},
            "copies_already_made": sum(1 for move in self.moves if move.copied),
            "outbox_updated": len(self.outbox),
            "nothing_to_do": not (
                guards_to_update
                or self.legacy_cells
                or self.unprefixed_guards
                or self.moves
                or self.outbox
            ),
            "conflicts": self.conflicts,
        }


@define
class _Read:
    """The table's items sorted by what the migration does with them."""

    keys: set[tuple[str, str]] = field(factory=set)
    # pk -> the appointment stored under a clinic key.
    appointments: dict[str, Appointment] = field(factory=dict)
    # (kind, id) -> the clinics it is stored under, for the kinds of GLOBAL_ID_KINDS.
    placed: dict[tuple[str, str], set[str]] = field(factory=dict)
    unprefixed: list[tuple[str, dict[str, Any]]] = field(factory=list)
    outbox: list[dict[str, Any]] = field(factory=list)
    guards: dict[str, dict[str, str]] = field(factory=dict)


def make_plan(items: Iterable[Mapping[str, Any]], now: datetime, clinic: str | None = None) -> Plan:
    """The migration of a table whose items (plain values) are `items`, at `now`.

    `clinic` is the clinic of the table's unprefixed items; CannotMigrate if there are any
    and it is None, or if an earlier run copied one of them to another clinic.
    """
    plan = Plan(clinic=clinic)
    read = _sort(items, plan)
    outbox = [(item, _event_clinic(item)) for item in read.outbox]
    _require_clinic(plan, read, sum(1 for _, found in outbox if found is None))
    for item, found in outbox:
        plan.outbox.append(_outbox_update(item, found or str(clinic)))
    appointments = list(read.appointments.values())
    for kind, item in read.unprefixed:
        move, appointment = _move(kind, item, str(clinic), read, now)
        plan.moves.append(move)
        if appointment is not None:
            appointments.append(appointment)
    for pk, cells in read.guards.items():
        _guard(plan, pk).have = cells
    _plan_guards(plan, appointments, now)
    return plan


def _sort(items: Iterable[Mapping[str, Any]], plan: Plan) -> _Read:
    read = _Read()
    for item in items:
        pk, sk = str(item["pk"]), str(item["sk"])
        read.keys.add((pk, sk))
        clinic = clinic_of(pk)
        if clinic is not None:
            rest = pk[len(clinic) + 1 :]
            if rest.startswith("APPT#") and sk == APPOINTMENT_SK:
                appointment = _rebuild(APPOINTMENTS, appointment_from_item, item)
                read.appointments[pk] = appointment
                _place(read, APPOINTMENTS, appointment.appointment_id, clinic)
            elif rest.startswith("REQ#") and sk == REQUEST_SK:
                _place(read, REQUESTS, rest.removeprefix("REQ#"), clinic)
            elif is_guard(pk) and sk == GUARD_SK:
                read.guards[pk] = stored_cells(item)
        elif pk.startswith(LEGACY_CELL_PREFIXES) and sk == LOCK_SK:
            plan.legacy_cells.append(pk)
        elif pk.split("#", 1)[0] in GUARD_PREFIXES and sk == GUARD_SK:
            plan.unprefixed_guards.append(pk)
        elif pk.startswith(OUTBOX_PREFIX) and sk == EVENT_SK:
            if "clinic_id" not in item or "clinic_id" not in _envelope(item):
                read.outbox.append(dict(item))
        else:
            kind = UNPREFIXED_KINDS.get((pk.split("#", 1)[0] + "#", sk))
            if kind is not None:
                read.unprefixed.append((kind, dict(item)))
    return read


def _place(read: _Read, kind: str, item_id: str, clinic: str) -> None:
    read.placed.setdefault((kind, item_id), set()).add(clinic)


def _event_clinic(item: Mapping[str, Any]) -> str | None:
    """The clinic an outbox item already names (envelope or attribute), if any."""
    found = _envelope(item).get("clinic_id") or item.get("clinic_id")
    return str(found) if found else None


def _envelope(item: Mapping[str, Any]) -> dict[str, Any]:
    try:
        envelope = json.loads(item["envelope"])
    except (KeyError, TypeError, ValueError):
        envelope = None
    if not isinstance(envelope, dict):
        raise CannotMigrate(f"{item['pk']}: not readable as an outbox event (no JSON envelope)")
    return envelope


def _require_clinic(plan: Plan, read: _Read, events_without_clinic: int) -> None:
    found = Counter(kind for kind, _ in read.unprefixed)
    counts = {
        **{label: found[kind] for kind, label in KIND_LABELS.items()},
        "outbox events without a clinic": events_without_clinic,
        "unprefixed day guards": len(plan.unprefixed_guards),
        "per-cell lock items": len(plan.legacy_cells),
    }
    if plan.clinic is None and any(counts.values()):
        listed = ", ".join(f"{n} {what}" for what, n in counts.items() if n)
        raise CannotMigrate(
            f"the table holds items written before clinics ({listed}); "
            "name the clinic they belong to with --clinic ID"
        )


def _move(
    kind: str, item: dict[str, Any], clinic: str, read: _Read, now: datetime
) -> tuple[Move, Appointment | None]:
    """The copy of one unprefixed item in `clinic`, and the appointment it is, if one."""
    pk, sk = str(item["pk"]), str(item["sk"])
    # The domain object is rebuilt from the old item and written by today's mapper: the new
    # item has exactly this release's attributes and index keys.
    owned = {**item, "clinic_id": clinic}
    appointment = None
    if kind == APPOINTMENTS:
        appointment = _rebuild(kind, appointment_from_item, owned)
        new = appointment_to_item(appointment)
    elif kind == DOCTORS:
        new = doctor_to_item(_rebuild(kind, doctor_from_item, owned))
    elif kind == REQUESTS:
        new = request_to_item(_rebuild(kind, request_from_item, owned))
    else:
        record = _rebuild(kind, idempotency_from_item, item)
        new = idempotency_to_item(clinic, record, now)
        if "expires_at" in item:
            # A key lives a day from its booking, not from the migration.
            new["expires_at"] = item["expires_at"]
    if kind in GLOBAL_ID_KINDS:
        item_id = pk.split("#", 1)[1]
        elsewhere = sorted(read.placed.get((kind, item_id), set()) - {clinic})
        if elsewhere:
            raise CannotMigrate(
                f"{pk} was copied to clinic {elsewhere[0]!r} by an earlier run; "
                f"run again with --clinic {elsewhere[0]}"
            )
    copied = (str(new["pk"]), str(new["sk"])) in read.keys
    if copied and appointment is not None:
        appointment = None  # the stored copy is the one that counts (it may be newer)
    return Move(kind, pk, sk, new, copied), appointment


def _rebuild(kind: str, build: Callable[[Mapping[str, Any]], T], item: Mapping[str, Any]) -> T:
    try:
        return build(item)
    except (KeyError, TypeError, ValueError, ValidationError) as error:
        # The error's text may quote the item (a phone): name the item and the error only.
        raise CannotMigrate(
            f"{item['pk']}: not readable as one of the {kind} ({type(error).__name__})"
        ) from None


def _outbox_update(item: Mapping[str, Any], clinic: str) -> OutboxUpdate:
    pk = str(item["pk"])
    envelope = {**_envelope(item), "clinic_id": clinic}
    event = _rebuild("outbox", event_from_item, {"pk": pk, "envelope": json.dumps(envelope)})
    # Today's mapper writes the envelope, so it reads back exactly as the relay expects.
    new = event_to_item(event)
    return OutboxUpdate(pk, str(item["envelope"]), str(new["envelope"]), clinic)


def _plan_guards(plan: Plan, appointments: list[Appointment], now: datetime) -> None:
    plan.appointments = len(appointments)
    owners: dict[tuple[str, str], str] = {}
    for appointment in sorted(appointments, key=lambda a: (a.created_at, a.appointment_id)):
        plan.clinics.add(appointment.clinic_id)
        if not appointment.is_active:
            continue
        plan.active += 1
        tag = owner_tag(appointment.appointment_id)
        needed = {g: names for g, names in held(appointment).items() if _live(g.day, now)}
        if not needed:
            plan.past += 1
        for guard, names in needed.items():
            target = _guard(plan, guard.pk)
            for name in sorted(names):
                holder = owners.setdefault((guard.pk, name), appointment.appointment_id)
                if holder != appointment.appointment_id:
                    plan.conflicts.append(
                        {
                            "clinic": appointment.clinic_id,
                            "guard": guard.pk.split("#", 2)[1],
                            "cell": name,
                            "day": str(guard.day),
                            "appointment_ids": [holder, appointment.appointment_id],
                        }
                    )
                    continue
                target.want[name] = tag


def _guard(plan: Plan, pk: str) -> GuardPlan:
    if pk not in plan.guards:
        plan.guards[pk] = GuardPlan(pk, parse_guard_pk(pk)[3])
    return plan.guards[pk]


def _live(day: date, now: datetime) -> bool:
    return guard_expiry(day) > epoch(now)
