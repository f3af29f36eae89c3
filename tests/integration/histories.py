"""The vocabulary of the random histories: doctors, patients, keys, times and how they are drawn.

Shared by the lockstep machine (memory vs DynamoDB Local, one clinic) and the two-clinic
machine, so both speak of the same doctors, phones, idempotency keys and wall times.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

from domain.appointment import Patient
from domain.errors import CitasError

T = TypeVar("T")

LIMA = ZoneInfo("America/Lima")
SANTIAGO = ZoneInfo("America/Santiago")
# Tuesday 08:00 in Lima, 10:00 in Santiago; neither zone changes offset for months.
START = datetime(2026, 12, 1, 13, 0, tzinfo=UTC)
# The counter ids' timestamp: the same instant, so they look like ids minted then.
ID_EPOCH_MS = int(START.timestamp() * 1000)

OFFICE = {d: [["09:00", "13:00"], ["14:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
LONG_DAYS = {d: [["08:00", "20:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat")}
# doctor id -> (country, zone); "luz" starts unregistered, so she is first a 404.
DOCTORS: dict[str, tuple[str, ZoneInfo]] = {
    "rosa": ("PE", LIMA),
    "matias": ("CL", SANTIAGO),
    "luz": ("PE", LIMA),
}
# Four patients of both countries; the second has a document id.
PATIENTS = (
    Patient("Ana Quispe", "+51987650001"),
    Patient("Bruno Díaz", "+51987650002", "DNI-45871236"),
    Patient("Carla Soto", "+56987650003"),
    Patient("Diego Rojas", "+56987650004"),
)
IDEMPOTENCY_KEYS = (None, None, "clave-1", "clave-2", "clave-3")

doctor_ids = st.sampled_from(sorted(DOCTORS))
registered_doctor_ids = st.sampled_from(["rosa", "rosa", "matias", "matias", "luz"])
patients = st.integers(0, len(PATIENTS) - 1)
days_ahead = st.one_of(st.just(1), st.integers(0, 3))
# A local wall time: an office minute mostly on a 10-minute grid (every slot length but 15
# and 60 divides it), now and then any 5 minutes of the day, to reach the edges.
wall_minutes = st.one_of(
    st.integers(9 * 6, 18 * 6).map(lambda n: n * 10),
    st.integers(7 * 12, 21 * 12).map(lambda n: n * 5),
)
# Mostly the n-th slot of a weekday morning or afternoon (in whatever slot length the doctor
# has then), else a raw wall time on any day.
whens = st.one_of(
    st.tuples(st.sampled_from(["am", "pm"]), st.integers(0, 7)),
    st.tuples(st.sampled_from(["am", "pm"]), st.integers(0, 7)),
    st.tuples(st.just("wall"), wall_minutes),
)
slot_counts = st.one_of(st.integers(1, 3), st.just(0))  # 0: as long as the doctor allows


def outcome_of(action: Callable[[], T]) -> T | CitasError:
    """A use case's answer; a domain error is an answer, anything else fails the test."""
    try:
        return action()
    except CitasError as error:
        return error
