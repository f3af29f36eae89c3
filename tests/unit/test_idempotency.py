from __future__ import annotations

from datetime import UTC

import pytest

from domain.commands import BookAppointment
from domain.errors import IdempotencyKeyReused, SlotUnavailable, ValidationError
from tests.unit.conftest import WED, World, at, booking, patient


def test_a_retry_with_the_same_key_and_body_returns_the_same_appointment(world: World) -> None:
    first = world.clinic.book(booking(at(WED, "09:30")), idempotency_key="abc-1")

    again = world.clinic.book(booking(at(WED, "09:30")), idempotency_key="abc-1")

    assert again.appointment_id == first.appointment_id
    assert len(world.store.appointments) == 1
    assert world.event_types() == ["AppointmentRequested"]


def test_the_same_instant_spelled_in_utc_is_the_same_request(world: World) -> None:
    first = world.clinic.book(booking(at(WED, "09:30")), idempotency_key="abc-2")

    again = world.clinic.book(booking(at(WED, "09:30").astimezone(UTC)), idempotency_key="abc-2")

    assert again.appointment_id == first.appointment_id


def test_the_same_key_with_another_body_is_rejected(world: World) -> None:
    world.clinic.book(booking(at(WED, "09:30")), idempotency_key="abc-3")

    with pytest.raises(IdempotencyKeyReused) as raised:
        world.clinic.book(booking(at(WED, "10:00")), idempotency_key="abc-3")
    assert raised.value.code == "idempotency_key_reused"
    assert len(world.store.appointments) == 1


def test_a_failed_booking_does_not_consume_its_key(world: World) -> None:
    world.clinic.book(booking(at(WED, "09:30"), who=1))
    with pytest.raises(SlotUnavailable):
        world.clinic.book(booking(at(WED, "09:30"), who=2), idempotency_key="abc-4")

    other = world.clinic.book(booking(at(WED, "10:00"), who=2), idempotency_key="abc-4")
    assert other.start == at(WED, "10:00")


def test_a_retry_returns_the_current_state_of_the_appointment(world: World) -> None:
    from domain.appointment import Status
    from domain.commands import ChangeStatus

    first = world.clinic.book(booking(at(WED, "09:30")), idempotency_key="abc-5")
    world.clinic.change_status(ChangeStatus(first.appointment_id, Status.CONFIRMED))

    again = world.clinic.book(booking(at(WED, "09:30")), idempotency_key="abc-5")
    assert again.status is Status.CONFIRMED


@pytest.mark.parametrize("key", ["", "x" * 129, "has space", "ñ"])
def test_a_malformed_key_is_a_validation_error(world: World, key: str) -> None:
    with pytest.raises(ValidationError):
        world.clinic.book(booking(at(WED, "09:30")), idempotency_key=key)


def test_notes_are_part_of_the_request(world: World) -> None:
    world.clinic.book(
        BookAppointment("rosa", patient(), at(WED, "09:30"), notes="primera vez"),
        idempotency_key="abc-6",
    )
    with pytest.raises(IdempotencyKeyReused):
        world.clinic.book(
            BookAppointment("rosa", patient(), at(WED, "09:30"), notes="control"),
            idempotency_key="abc-6",
        )
