"""The day guards' arithmetic: two visits share a guard cell exactly when they overlap.

Pure functions of `adapters.aws.dynamodb.guards`, checked on random instants and lengths; the
DynamoDB Local tests show the same guards refusing and freeing inside real transactions.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from adapters.aws.dynamodb.guards import (
    GUARD_SK,
    cell_name,
    guard_day,
    guard_expiry,
    held,
    owner_tag,
    read_guard,
)
from adapters.aws.dynamodb.transaction import Role
from domain.appointment import Appointment, Patient, Status
from domain.schedule import CELL_MINUTES, MAX_DURATION_MINUTES

BASE = datetime(2026, 12, 1, tzinfo=UTC)
starts = st.integers(min_value=0, max_value=3 * 288).map(
    lambda n: BASE + timedelta(minutes=CELL_MINUTES * n)
)
lengths = st.integers(min_value=1, max_value=MAX_DURATION_MINUTES // CELL_MINUTES).map(
    lambda n: n * CELL_MINUTES
)


def _visit(start: datetime, minutes: int, phone: str = "+51987654321") -> Appointment:
    # Built field by field: the booking rules (hours, the future) are not what is tested here.
    return Appointment(
        clinic_id="demo",
        appointment_id=f"a-{start:%d%H%M}-{minutes}-{phone[-2:]}",
        doctor_id="rosa",
        country="PE",
        time_zone="America/Lima",
        patient=Patient("Ana", phone),
        start=start,
        end=start + timedelta(minutes=minutes),
        status=Status.REQUESTED,
        version=1,
        created_at=BASE,
        updated_at=BASE,
    )


def _claims(appointment: Appointment, role: Role) -> set[tuple[str, str]]:
    return {
        (guard.pk, name)
        for guard, names in held(appointment).items()
        if guard.role is role
        for name in names
    }


@given(starts, lengths, starts, lengths)
def test_two_visits_share_a_guard_cell_iff_they_overlap(
    a_start: datetime, a_minutes: int, b_start: datetime, b_minutes: int
) -> None:
    a = _visit(a_start, a_minutes)
    b = _visit(b_start, b_minutes, "+51987654300")
    overlap = a.start < b.end and b.start < a.end
    assert bool(_claims(a, Role.DOCTOR_GUARD) & _claims(b, Role.DOCTOR_GUARD)) == overlap
    # Different phones never share a patient guard.
    assert not _claims(a, Role.PATIENT_GUARD) & _claims(b, Role.PATIENT_GUARD)


@given(starts, lengths)
def test_a_guard_item_reads_back_the_cells_it_was_given(start: datetime, minutes: int) -> None:
    visit = _visit(start, minutes)
    tag = owner_tag(visit.appointment_id)
    read: dict[datetime, str] = {}
    for guard, names in held(visit).items():
        item = {"pk": guard.pk, "sk": GUARD_SK, "expires_at": guard_expiry(guard.day)}
        item.update(dict.fromkeys(names, tag))
        role, owner, cells = read_guard(item)
        assert (role, owner) == (
            guard.role,
            "rosa" if role is Role.DOCTOR_GUARD else visit.patient.key,
        )
        if role is Role.DOCTOR_GUARD:
            read.update(cells)
            # A guard's TTL is never before the end of any cell it holds.
            assert all(guard_expiry(guard.day) > c.timestamp() + 86400 for c in cells)
    assert read == dict.fromkeys(visit.doctor_cells(), tag)


@given(starts, lengths)
def test_a_visit_touches_one_guard_day_per_party_unless_it_spans_0600_utc(
    start: datetime, minutes: int
) -> None:
    visit = _visit(start, minutes)
    days = {guard_day(c) for c in visit.doctor_cells()}
    assert len(days) <= 2
    crosses = any(c.hour == 6 and c.minute == 0 for c in visit.doctor_cells()[1:])
    assert len(days) == (2 if crosses else 1)
    assert len(held(visit)) == 2 * len(days)


def test_cell_names_are_utc_hhmm_and_the_day_begins_at_0600_utc() -> None:
    late = datetime(2026, 12, 3, 5, 55, tzinfo=UTC)
    assert (cell_name(late), guard_day(late).isoformat()) == ("0555", "2026-12-02")
    assert guard_day(late + timedelta(minutes=5)).isoformat() == "2026-12-03"
    assert len(owner_tag("01a231da-b735-708c-b65b-9d084acb2676")) == 4
