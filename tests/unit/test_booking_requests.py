from __future__ import annotations

import pytest

from domain.booking_request import RequestStatus
from domain.errors import NotFound, TemporarilyUnavailable
from tests.unit.conftest import WED, World, at, booking


def test_a_request_is_pending_and_queued_on_its_doctors_country(world: World) -> None:
    request = world.clinic.request_booking(booking(at(WED, "09:30")))

    assert request.status is RequestStatus.PENDING
    assert request.country == "PE"
    assert world.queue.take("PE", timeout=0) == request.request_id
    assert world.queue.take("CL", timeout=0) is None
    assert world.store.appointments == {}


def test_processing_a_request_books_it(world: World) -> None:
    request = world.clinic.request_booking(booking(at(WED, "09:30")))

    done = world.clinic.process_booking_request(request.request_id)

    assert done.status is RequestStatus.BOOKED
    assert done.appointment_id is not None
    assert world.clinic.get(done.appointment_id).start == at(WED, "09:30")
    assert world.clinic.booking_request(request.request_id).to_public() == {
        "request_id": request.request_id,
        "status": "booked",
        "appointment_id": done.appointment_id,
    }


def test_processing_twice_books_once(world: World) -> None:
    request = world.clinic.request_booking(booking(at(WED, "09:30")))

    world.clinic.process_booking_request(request.request_id)
    world.clinic.process_booking_request(request.request_id)

    assert len(world.store.appointments) == 1


def test_a_worker_that_crashed_after_booking_finds_its_booking_on_retry(world: World) -> None:
    request = world.clinic.request_booking(booking(at(WED, "09:30")))
    # The booking was made, but the outcome was never stored.
    world.clinic.book(request.command, idempotency_key=f"request:{request.request_id}")

    done = world.clinic.process_booking_request(request.request_id)

    assert done.status is RequestStatus.BOOKED
    assert len(world.store.appointments) == 1


def test_a_request_that_cannot_be_booked_is_rejected_with_the_error_code(world: World) -> None:
    world.clinic.book(booking(at(WED, "09:30"), who=1))
    request = world.clinic.request_booking(booking(at(WED, "09:30"), who=2))

    done = world.clinic.process_booking_request(request.request_id)

    assert done.status is RequestStatus.REJECTED
    assert done.error is not None
    assert done.error["code"] == "slot_unavailable"
    assert world.event_types()[-1] == "BookingRequestRejected"
    rejected = list(world.store.outbox.values())[-1]
    assert rejected.appointment_id is None
    assert rejected.group_key == request.request_id


def test_a_request_for_an_unknown_doctor_is_not_found_at_once(world: World) -> None:
    with pytest.raises(NotFound):
        world.clinic.request_booking(booking(at(WED, "09:30"), doctor="nobody"))


def test_an_unknown_request_is_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        world.clinic.booking_request("0190a000-0000-7000-8000-000000000000")


def test_a_request_that_cannot_be_queued_is_rejected_not_left_pending(world: World) -> None:
    class DownQueue:
        def enqueue(self, request: object) -> None:
            raise TemporarilyUnavailable("queue down")

    world.clinic.request_queue = DownQueue()

    with pytest.raises(TemporarilyUnavailable):
        world.clinic.request_booking(booking(at(WED, "09:30")))
    (stored,) = world.store.requests.values()
    assert stored.status is RequestStatus.REJECTED
