"""Day guards: a doctor's or a patient's time as one item per guard day, one attribute per cell.

Uniqueness never rests on a GSI (they are eventually consistent). The time an active
appointment holds is a set of 5-minute grid cells; each lives in the guard item of its guard
day, `<clinic>#DOCDAY#<doctor>#<YYYY-MM-DD>` or `<clinic>#PATDAY#<patient key>#<YYYY-MM-DD>`
(sort key `DAY`; the patient key is a hash of the phone, never the phone), as the attribute
`HHMM` (the cell's UTC start) whose value is the owner's tag.

A guard day is 24 hours of UTC from 06:00 UTC, named by its UTC date: fixed instants, never a
local date, because a patient's two doctors may live in different zones and a doctor's zone
may change, while the instant of a cell never does. Why 06:00 and not 00:00 UTC: 00:00 UTC is
19:00 in Lima, Bogotá or Quito and 18:00 in Mexico City, prime time for visits after work,
and a visit across the boundary touches two guard items per party; 06:00 UTC is 00:00 to 03:00
in every zone from Mexico to Chile and Argentina, when clinics are closed. A visit across it
still works, with one more guard item per party.

Every change of an appointment updates each guard item it touches once, in the same
transaction as the appointment: the cells it starts holding are `SET` on
`attribute_not_exists(cell)`, the cells it stops holding are `REMOVE`d on `cell = :me`, and the
cells it keeps are left alone. So a booking is one item per day and party whatever its length
(the 100-item limit is never near), and a refused one says in its cancellation reasons (the
guard's stored item, `ReturnValuesOnConditionCheckFailure`) which cell is taken, and by whom.

The tag is 4 base64url characters of a hash of the appointment id: the item's size is what
DynamoDB charges for, and a full 10-hour day of cells stays near 1 KB. Tags need not be unique:
a cell is taken only when absent, and an appointment frees only cells the transaction's
version check proves it holds; `cell = :me` is a second line of defence, not the guarantee.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final

from attrs import frozen

from adapters.aws.dynamodb.keys import epoch
from adapters.aws.dynamodb.transaction import Cancelled, Role, Transaction, cancelled_item
from domain.appointment import Appointment
from domain.schedule import cells

GUARD_SK: Final = "DAY"
# Where a guard day begins, in UTC (see the module docstring).
GUARD_DAY_START: Final = timedelta(hours=6)
# A guard expires a day after its day ends; DynamoDB deletes it a day or two after that.
GUARD_TTL: Final = timedelta(days=1)
TAG_BYTES: Final = 3  # 24 bits, 4 base64url characters
GUARD_ROLES: Final = (Role.DOCTOR_GUARD, Role.PATIENT_GUARD)
# A doctor's guard counts its writes: time off checks the days it reads did not change.
WRITES: Final = "writes"


def owner_tag(appointment_id: str) -> str:
    """The short value an appointment's cells hold in a guard item."""
    digest = hashlib.blake2b(appointment_id.encode(), digest_size=TAG_BYTES).digest()
    return base64.urlsafe_b64encode(digest).decode()


def guard_day(cell: datetime) -> date:
    """The guard day a cell belongs to: the UTC date of the 06:00 UTC that begins it."""
    return (cell.astimezone(UTC) - GUARD_DAY_START).date()


def day_start(day: date) -> datetime:
    """The instant a guard day begins."""
    return datetime.combine(day, time(), tzinfo=UTC) + GUARD_DAY_START


def doctor_guard_pk(clinic_id: str, doctor_id: str, day: date) -> str:
    """The partition key of a doctor's guard of one guard day."""
    return f"{clinic_id}#DOCDAY#{doctor_id}#{day.isoformat()}"


def patient_guard_pk(clinic_id: str, patient_key: str, day: date) -> str:
    """The partition key of a patient's guard of one guard day (the key hashes the phone).

    Per clinic: a patient is a phone within one clinic, so two clinics never block each other.
    """
    return f"{clinic_id}#PATDAY#{patient_key}#{day.isoformat()}"


def cell_name(cell: datetime) -> str:
    """The attribute of one cell inside its day's guard: its UTC start as `HHMM`."""
    return cell.astimezone(UTC).strftime("%H%M")


def guard_expiry(day: date) -> int:
    """The TTL of a day's guard, in epoch seconds: a day after the day ends."""
    return epoch(day_start(day) + timedelta(days=1) + GUARD_TTL)


@frozen
class Guard:
    """One guard item: whose time it is (its role), its guard day and its partition key."""

    role: Role
    day: date
    pk: str


# What an appointment holds: each guard item it touches -> the names of its cells there.
Held = dict[Guard, frozenset[str]]


def by_day(role: Role, clinic_id: str, owner: str, cells: Iterable[datetime]) -> Held:
    """The guard items `cells` of one party (a doctor or a patient key) fall in, with theirs."""
    days: dict[date, set[str]] = {}
    for cell in cells:
        days.setdefault(guard_day(cell), set()).add(cell_name(cell))
    pk = doctor_guard_pk if role is Role.DOCTOR_GUARD else patient_guard_pk
    return {
        Guard(role, day, pk(clinic_id, owner, day)): frozenset(names) for day, names in days.items()
    }


def held(appointment: Appointment) -> Held:
    """Every guard item the appointment holds cells in, with those cells; none when final."""
    if not appointment.is_active:
        return {}
    clinic = appointment.clinic_id
    doctor = by_day(Role.DOCTOR_GUARD, clinic, appointment.doctor_id, appointment.doctor_cells())
    patient = by_day(
        Role.PATIENT_GUARD, clinic, appointment.patient.key, appointment.patient_cells()
    )
    return doctor | patient


def around(appointment: Appointment, buffer: timedelta) -> Held:
    """The doctor's cells within `buffer` before and after the appointment (none when final).

    They must be free for the appointment to be booked there, but it does not hold them: the
    buffer is a distance between appointments, checked with the doctor's buffer of the day.
    """
    if not appointment.is_active or not buffer:
        return {}
    start, end = appointment.start, appointment.end
    return by_day(
        Role.DOCTOR_GUARD,
        appointment.clinic_id,
        appointment.doctor_id,
        cells(start - buffer, start) + cells(end, end + buffer),
    )


def doctor_guards(clinic_id: str, doctor_id: str, start: datetime, end: datetime) -> list[Guard]:
    """The doctor's guard items of every guard day [start, end) touches, in day order."""
    first, last = guard_day(start), guard_day(end - timedelta(microseconds=1))
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    return [Guard(Role.DOCTOR_GUARD, d, doctor_guard_pk(clinic_id, doctor_id, d)) for d in days]


class GuardChanges:
    """The guard updates of one transaction, remembered to read its refusal."""

    def __init__(self) -> None:
        # Transaction index -> the cells that item asked to take or to find free.
        self._taken: dict[int, frozenset[str]] = {}

    def add(
        self, tx: Transaction, tag: str, old: Held, new: Held, clear: Held | None = None
    ) -> None:
        """Add one Update per guard item whose cells change from `old` to `new`.

        `clear` names cells that must be free (the buffer around `new`) without being taken;
        a guard with only such cells gets a ConditionCheck.
        """
        clear = clear or {}
        for guard in sorted(old.keys() | new.keys() | clear.keys(), key=lambda g: g.pk):
            before, after = old.get(guard, frozenset()), new.get(guard, frozenset())
            taken, freed = sorted(after - before), sorted(before - after)
            # Cells this appointment holds now or is about to are its own business.
            free = sorted(clear.get(guard, frozenset()) - before - after)
            if not taken and not freed and not free:
                continue  # the cells kept are left alone
            self._taken[len(tx)] = frozenset(taken) | frozenset(free)
            if not taken and not freed:
                names = {f"#c{i}": name for i, name in enumerate(free)}
                condition = " AND ".join(f"attribute_not_exists({n})" for n in names)
                tx.check(guard.pk, GUARD_SK, guard.role, condition, names, None, all_old=True)
                continue
            tx.update(guard.pk, GUARD_SK, guard.role, *_update(guard, tag, taken, freed, free))

    def refusal(self, tx: Transaction, cancelled: Cancelled) -> Role | None:
        """The role of the first refused guard (doctor before patient) whose cell is taken.

        None when no guard refused, or only a freeing did: the cells this appointment was
        to free are not its own, so the stored state is not what the change started from.
        """
        refused = {
            tx.roles[index]
            for index, wanted in self._taken.items()
            if cancelled.failed(index) and holders(cancelled, index, wanted)
        }
        return next((role for role in GUARD_ROLES if role in refused), None)


def holders(cancelled: Cancelled, index: int, wanted: Iterable[str]) -> dict[str, str]:
    """Cell -> the owner tag holding it, among `wanted`, from a refused guard's stored item."""
    stored = cancelled_item(cancelled.error, index) or {}
    return {name: str(stored[name]) for name in wanted if name in stored}


def _update(
    guard: Guard, tag: str, taken: list[str], freed: list[str], free: list[str]
) -> tuple[str, str, Mapping[str, str], Mapping[str, Any]]:
    """Expression, condition, names and values of one guard's Update."""
    names = {"#ttl": "expires_at"}
    names.update({f"#t{i}": name for i, name in enumerate(taken)})
    names.update({f"#f{i}": name for i, name in enumerate(freed)})
    names.update({f"#c{i}": name for i, name in enumerate(free)})
    # The TTL is set on every write: removing the last cells of an item DynamoDB already
    # deleted creates it again (keys only), and it must expire again.
    sets = ["#ttl = :ttl", *(f"#t{i} = :me" for i in range(len(taken)))]
    expression = "SET " + ", ".join(sets)
    values: dict[str, Any] = {":me": tag, ":ttl": guard_expiry(guard.day)}
    if guard.role is Role.DOCTOR_GUARD:
        names["#w"] = WRITES
        values[":one"] = 1
        expression += " ADD #w :one"
    if freed:
        expression += " REMOVE " + ", ".join(f"#f{i}" for i in range(len(freed)))
    conditions = [f"attribute_not_exists(#t{i})" for i in range(len(taken))]
    conditions += [f"attribute_not_exists(#c{i})" for i in range(len(free))]
    if freed:
        # A guard already deleted by its TTL (a visit completed days later) frees nothing.
        mine = " AND ".join(f"#f{i} = :me" for i in range(len(freed)))
        conditions.append(f"(attribute_not_exists(pk) OR ({mine}))")
    return expression, " AND ".join(conditions), names, values


GUARD_PREFIXES: Final = {"DOCDAY": Role.DOCTOR_GUARD, "PATDAY": Role.PATIENT_GUARD}


def parse_guard_pk(pk: str) -> tuple[str, Role, str, date]:
    """Whose guard a partition key names (clinic, role, doctor id or patient key) and its day."""
    clinic, prefix, rest = pk.split("#", 2)
    owner, day_text = rest.rsplit("#", 1)
    return clinic, GUARD_PREFIXES[prefix], owner, date.fromisoformat(day_text)


def stored_cells(item: Mapping[str, Any]) -> dict[str, str]:
    """Cell name -> owner tag of a stored guard item (its other attributes are not cells)."""
    return {name: str(value) for name, value in item.items() if len(name) == 4 and name.isdigit()}


def read_guard(item: Mapping[str, Any]) -> tuple[Role, str, dict[datetime, str]]:
    """A stored guard item as (whose: role and doctor id or patient key, cell -> owner tag)."""
    _, role, owner, day = parse_guard_pk(str(item["pk"]))
    begins = day_start(day)
    cells = {}
    for name, tag in stored_cells(item).items():
        # The day's first HHMM is 0600; 0000-0555 fall on the next UTC date.
        since = timedelta(hours=int(name[:2]), minutes=int(name[2:])) - GUARD_DAY_START
        cells[begins + since % timedelta(days=1)] = tag
    return role, owner, cells


def is_guard(pk: str) -> bool:
    """Whether a partition key names a day guard."""
    parts = pk.split("#", 2)
    return len(parts) == 3 and parts[1] in GUARD_PREFIXES
