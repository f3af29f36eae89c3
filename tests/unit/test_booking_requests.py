from __future__ import annotations

import json

import pytest

from domain.booking_request import BookingRequest, RequestStatus
from domain.errors import NotFound, TemporarilyUnavailable, ValidationError
from entrypoints.http_responses import booking_request_json
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
    assert booking_request_json(world.clinic.booking_request(request.request_id)) == {
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
    # The booking was made, but the outcome was never stored: the request is still pending.
    world.clinic.process_booking_request(request.request_id)
    world.store.requests["demo", request.request_id] = request

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


def test_a_request_that_cannot_be_queued_is_not_stored_at_all(world: World) -> None:
    class DownQueue:
        def enqueue(self, request: object) -> None:
            raise TemporarilyUnavailable("queue down")

    world.clinic.request_queue = DownQueue()

    with pytest.raises(TemporarilyUnavailable):
        world.clinic.request_booking(booking(at(WED, "09:30")))
    # Queued first, then stored: nothing was stored, so nothing is left pending.
    assert world.store.requests == {}
    assert list(world.store.outbox.values()) == []


class _DownStore:
    """A request repository whose `add` fails, as when the table is busy."""

    def __init__(self, inner: object) -> None:
        self.inner = inner

    def add(self, request: object) -> None:
        raise TemporarilyUnavailable("table down")

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def test_a_request_queued_but_not_stored_is_answered_503_and_left_to_the_worker(
    world: World,
) -> None:
    repository = world.clinic.requests
    world.clinic.requests = _DownStore(repository)  # type: ignore[assignment]
    with pytest.raises(TemporarilyUnavailable):
        world.clinic.request_booking(booking(at(WED, "09:30")))
    world.clinic.requests = repository
    assert world.store.requests == {}
    request_id = world.queue.take("PE", timeout=0)
    assert request_id is not None
    with pytest.raises(NotFound):
        world.clinic.process_booking_request(request_id)  # no copy: nothing to go on


def test_the_worker_stores_and_books_a_queued_copy_once(world: World) -> None:
    sent = world.clinic.request_booking(booking(at(WED, "09:30")))
    world.store.requests.clear()  # as if the store had failed after the enqueue
    queued = BookingRequest.from_message(json.loads(json.dumps(sent.to_message())))

    done = world.clinic.process_booking_request(sent.request_id, queued)
    again = world.clinic.process_booking_request(sent.request_id, queued)

    assert done.status is RequestStatus.BOOKED
    assert again == done
    assert world.clinic.booking_request(sent.request_id).status is RequestStatus.BOOKED
    assert len(world.store.appointments) == 1


def test_a_copy_queued_after_its_store_is_the_same_request(world: World) -> None:
    sent = world.clinic.request_booking(booking(at(WED, "09:30")))
    queued = BookingRequest.from_message(sent.to_message())

    assert queued == world.clinic.booking_request(sent.request_id)
    world.clinic.requests.add(queued)  # the worker storing it again is harmless
    other = BookingRequest.from_message({**sent.to_message(), "country": "CL"})
    with pytest.raises(ValueError, match="already exists"):
        world.clinic.requests.add(other)


@pytest.mark.parametrize(
    "message",
    [{}, {"request_id": "x"}, {"request_id": "x", "country": "PE", "created_at": "nope"}],
)
def test_a_malformed_queue_message_is_a_validation_error(message: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        BookingRequest.from_message(message)


def test_a_client_key_that_spells_a_workers_key_is_its_own_key(world: World) -> None:
    request = world.clinic.request_booking(booking(at(WED, "09:30"), who=1))
    # The worker's key for this request was `request:<id>` once; a client may send that text.
    mine = world.clinic.book(
        booking(at(WED, "11:00"), who=2), idempotency_key=f"request:{request.request_id}"
    )

    done = world.clinic.process_booking_request(request.request_id)

    assert done.status is RequestStatus.BOOKED, done.error
    assert done.appointment_id != mine.appointment_id
    again = world.clinic.book(
        booking(at(WED, "11:00"), who=2), idempotency_key=f"request:{request.request_id}"
    )
    assert again.appointment_id == mine.appointment_id


@pytest.mark.parametrize("key", ["booking-request x", "a b", " x", "x\n", "x\t"])
def test_no_client_key_can_reach_the_workers_key_space(world: World, key: str) -> None:
    with pytest.raises(ValidationError):
        world.clinic.book(booking(at(WED, "09:30")), idempotency_key=key)
    assert world.store.appointments == {}
